"""The operator's Prometheus metrics (its API requests are counted by reportjobs_kube), and
`swallowed`: the one way an error that is not raised further is logged and counted."""

import logging
from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

RECONCILES = Counter(
    "reportjobs_operator_reconciles", "Reconciles of a ReportJob, by result", ["result"]
)
RECONCILE_SECONDS = Histogram(
    "reportjobs_operator_reconcile_seconds",
    "Time of one reconcile (API requests included)",
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
JOB_LAG = Histogram(
    "reportjobs_operator_job_lag_seconds",
    "From a ReportJob's creation to its Job's (server timestamps, whole seconds)",
    buckets=(0, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
)
QUEUE_DEPTH = Gauge("reportjobs_operator_queue_depth", "ReportJobs waiting to be reconciled")
INDEX_OBJECTS = Gauge(
    "reportjobs_operator_index_objects", "Objects in the watch-fed index", ["kind"]
)
SHARDS_HELD = Gauge("reportjobs_operator_shards_held", "Shards whose Lease this replica holds")
SHARDS_TOTAL = Gauge("reportjobs_operator_shards", "Shards of the release (K)")
MEMBERS = Gauge("reportjobs_operator_members", "Live replicas this replica counts (itself too)")
REBALANCES = Counter(
    "reportjobs_operator_rebalances",
    "Shards acquired, released (over the fair share, or on stop) and lost (not renewed, or "
    "taken by another replica)",
    ["change"],
)
for _change in ("acquired", "released", "lost"):
    REBALANCES.labels(_change)
SWEPT = Counter(
    "reportjobs_operator_window_sweep",
    "The window shards' sweep: shards pruned of closed claims, pruning writes refused (lost: the "
    "shard changed since the list; the next sweep tries again), and ReportJobs created from "
    "claims found without one (their gateway died after the 201)",
    ["outcome"],
)
for _outcome in ("pruned", "lost", "completed"):
    SWEPT.labels(_outcome)
SWALLOWED_ERRORS = Counter(
    "reportjobs_operator_swallowed_errors",
    "Errors the operator logged (with their cause) and carried on past: the work is retried, "
    "or left to a later round, the shard's next owner or the Lease's expiry; by where",
    ["where"],
)
Where = Literal[
    "serve",
    "window_sweep",
    "window_sweep_task",
    "shard_work",
    "shard_stop",
    "reconcile",
    "reconcile_event",
    "delivery",
    "delivery_record",
    "delivery_event",
    "lease_round",
    "lease_write",
    "lease_release",
    "lease_garbage",
    "member_lease_delete",
]
"""Where an error was swallowed: every value is shown from 0."""
for _where in get_args(Where):
    SWALLOWED_ERRORS.labels(_where)


def swallowed(
    log: logging.Logger,
    message: str,
    *args: object,
    where: Where,
    cause: BaseException | None = None,
) -> None:
    """Log an error that is not raised further, with its cause, and count it by `where`.

    The cause is the exception being handled (call it in an `except` block), or `cause`."""
    log.error(message, *args, exc_info=cause if cause is not None else True)
    SWALLOWED_ERRORS.labels(where).inc()
