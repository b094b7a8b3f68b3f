"""Small asyncio helpers."""

import asyncio


async def wait_for_flag(flag: asyncio.Event, seconds: float) -> bool:
    """Wait up to `seconds` for the flag; whether it is set."""
    try:
        await asyncio.wait_for(flag.wait(), timeout=seconds)
    except TimeoutError:
        return False
    return True
