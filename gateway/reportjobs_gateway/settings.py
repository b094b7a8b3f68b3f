"""The gateway's configuration, read once from the environment (prefix REPORTJOBS_)."""

import socket
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def namespace_of_this_pod() -> str:
    """The service account's namespace when running in a pod, else `default`."""
    if SERVICE_ACCOUNT_NAMESPACE.is_file():
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip()
    return "default"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REPORTJOBS_", frozen=True, extra="ignore", populate_by_name=True
    )

    namespace: str = Field(default_factory=namespace_of_this_pod, min_length=1)
    window_seconds: int = Field(default=300, ge=1)
    default_timeout_seconds: int = Field(default=60, ge=1)
    max_timeout_seconds: int = Field(default=60, ge=1)
    port: int = Field(default=8080, ge=1, le=65535)
    api_timeout_seconds: float = Field(default=10.0, gt=0)
    cache: bool = True
    # The longest a request waits for a job (`?wait`, a DELETE's wait for the operator): the
    # smaller of what it asks and this.
    max_wait_seconds: int = Field(default=60, ge=1, le=60)
    # Callback URLs (reportjobs_model.callbacks): what lets a non-public address through, and
    # the cluster's own ranges to refuse besides the non-global ones (JSON lists).
    callback_allowed_cidrs: list[str] = Field(default_factory=list)
    callback_allowed_hosts: list[str] = Field(default_factory=list)
    callback_blocked_cidrs: list[str] = Field(default_factory=list)
    """Serve reads and the fast submission paths from watch-fed caches (REPORTJOBS_CACHE)."""
    pod_name: str = Field(default_factory=socket.gethostname, validation_alias="POD_NAME")

    @model_validator(mode="after")
    def _default_within_max(self) -> Self:
        if self.default_timeout_seconds > self.max_timeout_seconds:
            raise ValueError(
                f"REPORTJOBS_DEFAULT_TIMEOUT_SECONDS ({self.default_timeout_seconds}) exceeds "
                f"REPORTJOBS_MAX_TIMEOUT_SECONDS ({self.max_timeout_seconds})"
            )
        return self
