"""Probes and metrics, served from a thread so that a busy event loop cannot starve them.

/healthz (liveness) fails only when the event loop itself has stalled: the loop stamps a
heartbeat every second, and a heartbeat older than `stall_seconds` means it is stuck. A loop
that is merely busy keeps stamping (every await point yields), so load never kills the pod.
/readyz says which shards this replica holds and which of them have synced their index;
/metrics is Prometheus' text format.
"""

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

LOOP_LAG = Gauge("reportjobs_operator_loop_lag_seconds", "How late the last heartbeat ran")
HEARTBEAT_SECONDS = 1.0


def _none() -> list[int]:
    return []


def _none_members() -> list[str]:
    return []


@dataclass
class Health:
    identity: str = ""
    stall_seconds: float = 60.0
    held: Callable[[], list[int]] = _none
    synced: Callable[[], list[int]] = _none
    members: Callable[[], list[str]] = _none_members
    heartbeat: float = field(default_factory=time.monotonic)

    def alive(self) -> bool:
        return time.monotonic() - self.heartbeat < self.stall_seconds

    def report(self) -> dict[str, object]:
        return {
            "status": "ok" if self.alive() else "stalled",
            "identity": self.identity,
            "shards": self.held(),
            "synced": self.synced(),
            "members": self.members(),
            "heartbeatAgeSeconds": round(time.monotonic() - self.heartbeat, 3),
        }


async def beat(health: Health) -> None:
    """Stamp the heartbeat from the event loop, forever."""
    while True:
        before = time.monotonic()
        health.heartbeat = before
        await asyncio.sleep(HEARTBEAT_SECONDS)
        LOOP_LAG.set(max(0.0, time.monotonic() - before - HEARTBEAT_SECONDS))


def serve_health(*, health: Health, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                return
            if self.path not in ("/healthz", "/readyz"):
                self._send(404, b'{"detail": "Not Found"}', "application/json")
                return
            code = 200 if health.alive() else 503
            self._send(code, json.dumps(health.report()).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            return None

    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - probes come from the node
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
    return server
