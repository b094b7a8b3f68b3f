"""What an API request can end in, besides an answer."""


class KubeError(Exception):
    """Base of every error of this package."""


class Unreachable(KubeError):
    """No answer: connection refused or reset, TLS failure, timeout, bad configuration."""


class Answered(KubeError):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, *, server_time: float) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason
        self.server_time = server_time


class NotFound(Answered):
    """404: no such object (or, for a watch, resource)."""


class Conflict(Answered):
    """409: the name is taken, a precondition failed, or the resourceVersion is stale."""


class Invalid(Answered):
    """422: the object or patch is invalid; for a JSON patch, also a failed `test` operation."""


class Gone(Answered):
    """410: the resourceVersion a list or watch asked for is too old."""


def answered(status: int, reason: str, *, server_time: float) -> Answered:
    kind = {404: NotFound, 409: Conflict, 410: Gone, 422: Invalid}.get(status, Answered)
    return kind(status, reason, server_time=server_time)
