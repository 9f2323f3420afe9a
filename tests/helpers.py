"""Test helpers: free ports, real node processes, polling with deadlines."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

KVCLUSTER = [sys.executable, "-m", "kvcluster.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02, what: str = "") -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # the condition may raise until it holds (connection refused...)
            last_exc = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}: last error {last_exc!r}")


class NodeProcess:
    """A real ``kvcluster node`` process on a free port in its own directory."""

    def __init__(self, directory: Path, *args: str, port: int | None = None, env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.args = list(args)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / f"node-{self.port}.log"

    def start(self, wait: bool = True) -> NodeProcess:
        cmd = [*KVCLUSTER, "node", *self.args]
        if "--port" not in self.args:
            cmd += ["--port", str(self.port)]
        if "--dir" not in self.args:
            cmd += ["--dir", str(self.dir)]
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.dir)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"node exited with {self.proc.returncode}: {self.log()}")
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))

        try:
            wait_until(ready, timeout, what=f"node on port {self.port}")
        except RuntimeError:
            raise
        except TimeoutError as e:
            raise TimeoutError(f"{e}\nlog:\n{self.log()}") from None

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawClient:
    """A bare RESP connection returning each reply's exact bytes (to check reply types and encodings)."""

    def __init__(self, port: int, resp: int = 2, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if resp == 3:
            self.call("HELLO", "3")

    def call(self, *args: bytes | str | int | float) -> bytes:
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%b\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._read()

    def _read(self) -> bytes:
        line = self.file.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError(f"connection closed mid-reply: {line!r}")
        kind = line[:1]
        if kind in b"$=!":
            n = int(line[1:-2])
            return line if n < 0 else line + self.file.read(n + 2)
        if kind in b"*~>%|":
            n = int(line[1:-2])
            if n < 0:
                return line
            if kind in b"%|":
                n *= 2
            return line + b"".join(self._read() for _ in range(n))
        return line

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RedisServerProcess:
    """A real Debian ``redis-server`` on a free port in ``directory``, stopped by its PID.

    Fails (never skips) when redis-server is not installed: ``make test`` installs it.
    """

    def __init__(self, directory: Path, *args: str, port: int | None = None):
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            import pytest

            pytest.fail("redis-server is not installed: `make test` installs Debian's redis-server (apt)")
        self.port = port or free_port()
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / f"redis-{self.port}.log"
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir)]
        cmd += ["--save", "", "--appendonly", "no", "--logfile", str(self.log_path), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=self.dir)
        try:
            wait_until(self._ready, 15, what=f"redis-server on port {self.port}")
        except BaseException:
            self.stop()
            raise

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}: {self.log()}")
        with self.client() as c:
            return bool(c.ping())

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-5000:]
        except OSError:
            return ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGCONT)
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode
