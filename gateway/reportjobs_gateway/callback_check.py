"""The submission-time check of a callback_url: its form, then every address its host resolves
to now (the operator checks again at delivery, on the addresses it connects to). Every input
ends in an answer (a refusal or None), never an exception: a refusal is a 422."""

import asyncio
import socket

from reportjobs_model.callbacks import AddressPolicy, host_and_port, url_problem

RESOLVE_SECONDS = 5.0


async def callback_refusal(url: str, *, policy: AddressPolicy) -> str | None:
    """Why the URL is refused (None: accepted)."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    host, port = host_and_port(url)
    if policy.host_allowed(host):
        return None
    try:
        async with asyncio.timeout(RESOLVE_SECONDS):
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError):
        return f"callback_url host {host!r} does not resolve"
    except ValueError:  # UnicodeError of IDNA, a NUL: the form check above refuses them first
        return f"callback_url host {host!r} is not a valid host name"
    return policy.refusal(host=host, addresses=[str(info[4][0]) for info in found])
