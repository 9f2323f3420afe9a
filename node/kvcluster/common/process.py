"""What every long-running kvcluster process does the same way: its event loop and its pid file."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator


def install_event_loop_policy() -> str:
    """Use uvloop when installed; returns the loop's name for INFO and the logs."""
    try:
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return "uvloop"
    except ImportError:  # pragma: no cover
        return "asyncio"


@contextlib.contextmanager
def pidfile(path: str) -> Iterator[None]:
    """Write our pid to ``path`` (empty: none) for the block; remove the file after it."""
    if path:
        with open(path, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        yield
    finally:
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)
