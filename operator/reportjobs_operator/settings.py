"""The operator's configuration, read once from the environment (prefix REPORTJOBS_)."""

import socket
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reportjobs_model.shards import BUCKETS
from reportjobs_operator.deadlines import DEFAULT_STARTUP_ALLOWANCE_SECONDS

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _namespace_of_this_pod() -> str:
    path = SERVICE_ACCOUNT_NAMESPACE
    return path.read_text(encoding="utf-8").strip() if path.is_file() else "default"


class OperatorConfig(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REPORTJOBS_", frozen=True, extra="ignore", populate_by_name=True
    )

    namespace: str = Field(default_factory=_namespace_of_this_pod, min_length=1)
    worker_image: str = Field(min_length=1)
    worker_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    worker_cpu_request: str = "10m"
    worker_memory_request: str = "32Mi"
    worker_memory_limit: str = "64Mi"
    worker_uid: int = Field(default=10001, ge=1)
    worker_service_account: str | None = None
    sleep_min_seconds: int = Field(default=15, ge=0)
    sleep_max_seconds: int = Field(default=40, ge=0)
    backoff_limit: int = Field(default=3, ge=0)
    # The Job's activeDeadlineSeconds is the timeout plus this (a backstop: the worker enforces
    # the timeout itself, from its own start).
    startup_allowance_seconds: int = Field(default=DEFAULT_STARTUP_ALLOWANCE_SECONDS, ge=0)
    # Optional: TimedOut when the work has not started this long after the ReportJob was created.
    start_deadline_seconds: int | None = Field(default=None, ge=1)
    retention_seconds: int = Field(default=604800, ge=0)
    resync_seconds: float = Field(default=30, gt=0)
    # Reconciles that run at once in a replica, over all its shards (each ReportJob is
    # reconciled by one worker at a time).
    workers: int = Field(default=8, ge=1, le=256)
    # The prefix of the shards' and members' Lease names (<prefix>-shard-NN, <prefix>-member-POD).
    lease_name: str = Field(default="reportjobs-operator", min_length=1, max_length=180)
    # K: the ReportJobs are split into this many shards, each owned through its own Lease.
    # Fixed for a release's life (every replica must agree).
    shards: int = Field(default=16, ge=1, le=BUCKETS)
    lease_duration_seconds: int = Field(default=15, ge=3)
    health_port: int = Field(default=8080, ge=1, le=65535)
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    pod_name: str = Field(default_factory=socket.gethostname, validation_alias="POD_NAME")
    # Notifications (notifications.py): the Standard Webhooks signing secret ("whsec_..."),
    # the retry schedule, and the address policy of callback URLs (as the gateway's).
    webhook_secret: str | None = Field(default=None, repr=False)
    notify_max_attempts: int = Field(default=8, ge=1, le=100)
    notify_backoff_seconds: float = Field(default=40.0, gt=0)
    notify_timeout_seconds: float = Field(default=10.0, gt=0)
    notify_concurrency: int = Field(default=16, ge=1, le=1024)
    callback_allowed_cidrs: list[str] = Field(default_factory=list)
    callback_allowed_hosts: list[str] = Field(default_factory=list)
    callback_blocked_cidrs: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _sleep_range(self) -> Self:
        if self.sleep_min_seconds > self.sleep_max_seconds:
            raise ValueError(
                f"REPORTJOBS_SLEEP_MIN_SECONDS ({self.sleep_min_seconds}) exceeds "
                f"REPORTJOBS_SLEEP_MAX_SECONDS ({self.sleep_max_seconds})"
            )
        return self
