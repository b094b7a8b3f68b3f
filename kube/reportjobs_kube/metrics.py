"""The API requests this process made, by verb and resource (as the API server counts them)."""

from prometheus_client import Counter, Histogram

API_REQUESTS = Counter(
    "reportjobs_api_requests",
    "Kubernetes API requests made by this process",
    ["verb", "resource", "code"],
)
API_LATENCY = Histogram(
    "reportjobs_api_request_seconds",
    "Latency of Kubernetes API requests (watches excluded)",
    ["verb", "resource"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


def verb_and_resource(method: str, path: str, *, watch: bool) -> tuple[str, str]:
    """apiserver_request_total's verb and resource (with /subresource) of a request."""
    parts = [part for part in path.split("?")[0].split("/") if part]
    if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
        parts = parts[parts.index("namespaces") + 2 :]
    else:
        parts = parts[2:] if parts and parts[0] == "api" else parts[3:]
    resource = "/".join(parts[:1] + parts[2:3])
    named = len(parts) >= 2
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method)
    if method == "DELETE":
        verb = "delete" if named else "deletecollection"
    if verb is None:
        verb = "watch" if watch else "get" if named else "list"
    return verb, resource
