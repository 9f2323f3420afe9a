"""Shared fixtures.

``node`` is one real ``kvcluster node`` process per test module (starting a
process per test would dominate the suite's run time); ``r`` and friends flush
it and reset its settings before each test, so tests stay independent.
Tests that need special settings start their own :class:`NodeProcess`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
import redis
import redis.asyncio
from helpers import NodeProcess


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    proc = NodeProcess(tmp_path_factory.mktemp("node"))
    proc.start()
    yield proc
    proc.stop()


def _reset(node: NodeProcess) -> None:
    c = node.client()
    c.flushall()
    c.close()


@pytest.fixture
def r(node: NodeProcess) -> Iterator[redis.Redis]:
    """RESP2 redis-py client, bytes replies, on a freshly flushed node."""
    _reset(node)
    c = node.client()
    yield c
    c.close()


@pytest.fixture
def r3(node: NodeProcess) -> Iterator[redis.Redis]:
    """RESP3 redis-py client on a freshly flushed node."""
    _reset(node)
    c = node.client(protocol=3)
    yield c
    c.close()


@pytest.fixture
def rs(node: NodeProcess) -> Iterator[redis.Redis]:
    """RESP2 client decoding replies to str."""
    _reset(node)
    c = node.client(decode_responses=True)
    yield c
    c.close()


@pytest.fixture
async def ar(node: NodeProcess):
    """redis.asyncio client on a freshly flushed node."""
    _reset(node)
    c = redis.asyncio.Redis(host="127.0.0.1", port=node.port)
    yield c
    await c.aclose()


@pytest.fixture
def redis_cli() -> str:
    path = shutil.which("redis-cli")
    if path is None:
        pytest.fail("redis-cli is not installed: `make test` installs Debian's redis-tools")
    return path
