"""Logging set-up shared by every component: Redis-like text lines or JSON."""

from __future__ import annotations

import json
import logging
import os
import sys
import time

# redis.conf loglevel -> logging level
LEVELS = {
    "debug": logging.DEBUG,
    "verbose": logging.DEBUG,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "nothing": logging.CRITICAL + 10,
}
_MARKS = {
    logging.DEBUG: ".",
    logging.INFO: "*",
    logging.WARNING: "#",
    logging.ERROR: "#",
    logging.CRITICAL: "#",
}


class RedisStyleFormatter(logging.Formatter):
    """``pid:R 23 Nov 2026 12:00:00.123 * message`` like redis-server (R = role letter)."""

    def __init__(self, role: str = "M"):
        super().__init__()
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        stamp = time.strftime("%d %b %Y %H:%M:%S", t) + f".{int(record.msecs):03d}"
        line = f"{os.getpid()}:{self.role} {stamp} {_MARKS.get(record.levelno, '*')} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
            "msg": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(level: str = "notice", fmt: str = "text", logfile: str = "", role: str = "M") -> None:
    handler: logging.Handler
    handler = logging.FileHandler(logfile) if logfile else logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedisStyleFormatter(role))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(LEVELS.get(level, logging.INFO))
    # Third-party chatter stays at warning unless we debug.
    for noisy in ("aiohttp.access", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level != "debug" else logging.DEBUG)
