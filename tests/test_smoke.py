"""The node starts, answers redis-py and redis-cli, and stops on SIGTERM."""

from __future__ import annotations

import subprocess

import redis
from helpers import NodeProcess


def test_ping_set_get(r: redis.Redis) -> None:
    assert r.ping() is True
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.get("missing") is None


def test_unknown_command_error(r: redis.Redis) -> None:
    try:
        r.execute_command("NOSUCHCMD", "a", "b")
    except redis.ResponseError as e:
        assert str(e) == "unknown command 'NOSUCHCMD', with args beginning with: 'a' 'b' "
    else:
        raise AssertionError("expected an error")


def test_redis_cli(node: NodeProcess, redis_cli: str) -> None:
    out = subprocess.run([redis_cli, "-p", str(node.port), "SET", "x", "1"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "OK"
    out = subprocess.run([redis_cli, "-p", str(node.port), "GET", "x"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "1"


def test_sigterm_exits_cleanly(tmp_path) -> None:
    proc = NodeProcess(tmp_path).start()
    assert proc.stop() == 0
