"""A tiny HTTP endpoint for probes, served in standby and while active."""

from dataclasses import dataclass

from aiohttp import web


@dataclass
class Health:
    leading: bool = False

    def set_leading(self, leading: bool) -> None:
        self.leading = leading


async def serve_health(*, health: Health, port: int) -> web.AppRunner:
    """GET /healthz and /readyz answer 200 while the event loop runs (both roles are ready)."""

    async def probe(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "leading": health.leading})

    app = web.Application()
    app.router.add_get("/healthz", probe)
    app.router.add_get("/readyz", probe)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # noqa: S104 - probes come from the node
    return runner
