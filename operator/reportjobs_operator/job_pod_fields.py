"""Pure readers over Job and Pod objects (JSON dicts as the API returns them)."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

Body = Mapping[str, Any]

SLEEP_ANNOTATION = "reportjobs.io/sleep-seconds"
"""On every Job: the sleep drawn for its ReportJob."""


def sleep_seconds_of(job: Body) -> int | None:
    """The drawn sleep written on the Job (None when absent or not a number)."""
    text = (job.get("metadata", {}).get("annotations") or {}).get(SLEEP_ANNOTATION)
    try:
        return int(str(text))
    except ValueError:
        return None


def is_controlled_by(obj: Body, *, owner_uid: str) -> bool:
    """Whether obj's controller ownerReference points at owner_uid."""
    owners: list[Mapping[str, Any]] = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("controller") is True and str(ref.get("uid")) == owner_uid for ref in owners)


def true_condition(job: Body, kind: str) -> Mapping[str, Any] | None:
    """The Job's condition of this type when its status is True."""
    for condition in job.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind and condition.get("status") == "True":
            found: Mapping[str, Any] = condition
            return found
    return None


STOPPED_DEADLINE = 1
"""The activeDeadlineSeconds a stopped Job is given (the Job controller then fails it)."""


def is_stopping(job: Body) -> bool:
    """Stopped already: its Job controller is failing it (its event comes back)."""
    return (job.get("spec") or {}).get("activeDeadlineSeconds") == STOPPED_DEADLINE


def is_finished(job: Body) -> bool:
    """Complete or Failed: the Job controller starts no more pods for it."""
    return any(true_condition(job, kind) is not None for kind in ("Complete", "Failed"))


def is_deleting(obj: Body) -> bool:
    return obj.get("metadata", {}).get("deletionTimestamp") is not None


def _container_states(pod: Body) -> Iterator[Mapping[str, Any]]:
    for container in pod.get("status", {}).get("containerStatuses") or []:
        yield container.get("state") or {}


UNEXITED_PHASES = ("Pending", "Running", "Unknown")
"""The pod phases in which a container may still start or run; in the others (Succeeded,
Failed) all containers have exited for good (restartPolicy Never)."""


def has_exited(pod: Body) -> bool:
    """Nothing runs in the pod any more: the kubelet reported it Succeeded or Failed."""
    phase = pod.get("status", {}).get("phase")
    return phase is not None and phase not in UNEXITED_PHASES


def is_running(pod: Body) -> bool:
    phase: object = pod.get("status", {}).get("phase")
    return phase == "Running"


def container_started_at(pod: Body) -> str | None:
    """When the pod's (first) container started running, if it did."""
    for state in _container_states(pod):
        for key in ("running", "terminated"):
            started = (state.get(key) or {}).get("startedAt")
            if started:
                return str(started)
    return None


def waiting_reason(pod: Body) -> str | None:
    """`Reason: message` of a container that waits (e.g. ImagePullBackOff)."""
    for state in _container_states(pod):
        waiting = state.get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason != "ContainerCreating":
            message = waiting.get("message")
            return f"{reason}: {message}" if message else str(reason)
    return None


def termination_report(pod: Body) -> Mapping[str, Any] | None:
    """The JSON the worker wrote to its termination log, when it exited 0."""
    for state in _container_states(pod):
        terminated = state.get("terminated") or {}
        if terminated.get("exitCode") == 0 and terminated.get("message"):
            try:
                report = json.loads(terminated["message"])
            except ValueError:
                return None
            return report if isinstance(report, dict) else None
    return None
