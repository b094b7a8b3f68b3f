"""Status conditions whose lastTransitionTime moves only when status or reason changes."""

from collections.abc import Iterable, Mapping
from typing import Any

from reportjobs_operator.ports import Obj


def condition(
    *,
    kind: str,
    status: bool,
    reason: str,
    message: str,
    previous: Iterable[Mapping[str, Any]],
    now: str,
    generation: int,
) -> Obj:
    """A condition of type `kind`, keeping the previous transition time when nothing moved."""
    text = "True" if status else "False"
    before = next((c for c in previous if c.get("type") == kind), None)
    unchanged = before is not None and (before.get("status"), before.get("reason")) == (
        text,
        reason,
    )
    return {
        "type": kind,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": before["lastTransitionTime"] if unchanged and before else now,
        "observedGeneration": generation,
    }
