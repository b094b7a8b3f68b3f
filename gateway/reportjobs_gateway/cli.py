"""`reportjobs-gateway`: serve the API with uvicorn on 0.0.0.0:$REPORTJOBS_PORT.

One process (one uvicorn worker): its caches, clock and metrics are this process's; scale with
replicas. uvloop and httptools are the event loop and the HTTP parser (both in the lock file).
"""

import logging

import uvicorn

from reportjobs_gateway.settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        "reportjobs_gateway.main:app",
        host="0.0.0.0",  # noqa: S104 - a pod serves on all its interfaces
        port=settings.port,
        log_level="info",
        proxy_headers=False,
        loop="uvloop",
        http="httptools",
        access_log=False,
        workers=1,
    )
