"""The body of every forked child (BGSAVE, BGREWRITEAOF, a forked full sync).

A child shares the parent's pages copy-on-write and must leave them alone: it drops the
parent's signal handling, stops the garbage collector (a collection touches every object,
which copies the pages), closes every inherited descriptor but the ones its job needs (so a
dead parent's port and client sockets are not held open by it), runs its job, reports one
JSON object on a pipe and exits without ever returning into the parent's event loop.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
from collections.abc import Callable, Collection
from typing import Any, NoReturn


def run_child(job: Callable[[], dict[str, Any]], report_fd: int, keep_fds: Collection[int] = ()) -> NoReturn:
    """Run ``job`` in a freshly forked child, write ``{"ok": ..., **result}`` to ``report_fd``, exit."""
    code = 1
    try:
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(-1)  # the parent's event loop must not hear our signals
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_DFL)
        gc.disable()
        keep = {report_fd, *keep_fds}
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd > 2 and fd not in keep:
                with contextlib.suppress(OSError):
                    os.close(fd)
        report = job()
        report["cow"] = private_dirty()
        report["ok"] = True
        os.write(report_fd, json.dumps(report).encode())
        code = 0
    except BaseException as e:
        with contextlib.suppress(BaseException):
            os.write(report_fd, json.dumps({"ok": False, "error": f"{type(e).__name__}: {e}"}).encode())
            os.write(2, f"background child {os.getpid()} failed: {type(e).__name__}: {e}\n".encode())
    os._exit(code)


def read_report(fd: int) -> dict[str, Any]:
    """The child's report (``{}`` when it died before writing one)."""
    with contextlib.suppress(OSError, ValueError):
        data = os.read(fd, 65536)
        if data:
            report = json.loads(data)
            if isinstance(report, dict):
                return report
    return {}


def private_dirty() -> int:
    """Bytes this process has written to pages it shared at fork: the copy-on-write cost."""
    try:
        with open("/proc/self/smaps_rollup") as f:
            for line in f:
                if line.startswith("Private_Dirty:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
