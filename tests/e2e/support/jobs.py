"""Waiting on jobs through the public API."""

from __future__ import annotations

from typing import Any

from tests.e2e.support.gateway import Gateway
from tests.e2e.support.kube import TERMINAL
from tests.e2e.support.polling import wait_until


def wait_terminal(gateway: Gateway, job_id: str, *, timeout: float = 180) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        answer = gateway.job(job_id)
        body: dict[str, Any] = answer.body
        return body if answer.status == 200 and body.get("status") in TERMINAL else None

    return wait_until(finished, timeout=timeout, what=f"job {job_id} to reach a terminal status")


def wait_status(gateway: Gateway, job_id: str, status: str, *, timeout: float = 120) -> None:
    wait_until(
        lambda: gateway.job(job_id).body.get("status") == status,
        timeout=timeout,
        what=f"job {job_id} to be {status}",
    )
