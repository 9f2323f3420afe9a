"""Failover time: kvcluster sentinel + nodes vs Debian's redis-sentinel + redis-server, one run.

    .venv/bin/python bench/sentinel_failover.py [--runs 5] [--down-after 1000 5000] [--only kvcluster|redis]

Each run starts a fresh group on loopback (1 leader, 2 replicas, 3 sentinels, quorum 2), waits
until every sentinel knows both replicas and both peers, starts a redis-py
``Sentinel.master_for`` writer (SET in a loop, 1 s socket timeout, as an application would),
kills the leader with SIGKILL, and measures:

* ``switch``: kill -> the first ``+switch-master`` event published by any of the sentinels;
* ``client``: kill -> the first write acknowledged by the new leader through master_for.

Prints min / median / max per system and down-after, and the ratio of medians. A fresh group
per run (Redis waits 2 x failover-timeout between failovers of one group).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
import redis.sentinel

GROUP = "mymaster"
KVCLUSTER = [sys.executable, "-m", "kvcluster.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            value = predicate()
            if value:
                return value
        time.sleep(0.02)
    raise TimeoutError(f"timed out waiting for {what}")


class Proc:
    def __init__(self, cmd: list[str], cwd: Path, port: int):
        cwd.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.log = open(cwd / "out.log", "ab")  # noqa: SIM115 - closed in stop()
        self.p = subprocess.Popen(cmd, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._up, 20, f"{cmd[0]} on port {port}")

    def _up(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.p.pid, signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def start_group(kind: str, root: Path, down_after: int) -> tuple[list[Proc], list[Proc]]:
    nodes: list[Proc] = []
    for i in range(3):
        port = free_port()
        d = root / f"n{i}"
        replicaof = [] if i == 0 else ["--replicaof", "127.0.0.1", str(nodes[0].port)]
        if kind == "kvcluster":
            cmd = [*KVCLUSTER, "node", "--port", str(port), "--dir", str(d), *replicaof]
        else:
            cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--save", ""]
            cmd += ["--appendonly", "no", *replicaof]
        nodes.append(Proc(cmd, d, port))
    with redis.Redis(port=nodes[0].port) as c:
        wait_until(lambda: c.info("replication")["connected_slaves"] == 2, 20, "replicas online")
    sentinels: list[Proc] = []
    for i in range(3):
        port = free_port()
        d = root / f"s{i}"
        d.mkdir(parents=True, exist_ok=True)
        conf = d / "sentinel.conf"
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {d}\n"
            + ("protected-mode no\n" if kind == "redis" else "")
            + f"sentinel monitor {GROUP} 127.0.0.1 {nodes[0].port} 2\n"
            f"sentinel down-after-milliseconds {GROUP} {down_after}\n"
            f"sentinel failover-timeout {GROUP} 10000\n"
        )
        cmd = [*KVCLUSTER, "sentinel", str(conf)] if kind == "kvcluster" else ["redis-sentinel", str(conf)]
        sentinels.append(Proc(cmd, d, port))

    def discovered() -> bool:
        for s in sentinels:
            with redis.Redis(port=s.port, decode_responses=True) as c:
                m = c.sentinel_master(GROUP)
                if m["num-slaves"] != 2 or m["num-other-sentinels"] != 2:
                    return False
        return True

    wait_until(discovered, 40, "discovery")
    return nodes, sentinels


def one_run(kind: str, down_after: int) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix=f"bench-sentinel-{kind}-"))
    nodes, sentinels = start_group(kind, root, down_after)
    switch_at: list[float] = []
    subs = [redis.Redis(port=s.port).pubsub() for s in sentinels]
    for sub in subs:
        sub.subscribe("+switch-master")
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set() and not switch_at:
            for sub in subs:
                msg = sub.get_message(timeout=0.01)
                if msg and msg["type"] == "message":
                    switch_at.append(time.monotonic())

    sentinel = redis.sentinel.Sentinel([("127.0.0.1", s.port) for s in sentinels], socket_timeout=1.0)
    master = sentinel.master_for(GROUP, socket_timeout=1.0)
    old_port = nodes[0].port
    first_new: list[float] = []

    def write() -> None:
        i = 0
        while not stop.is_set() and not first_new:
            i += 1
            try:
                master.set(f"k{i}", i)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                time.sleep(0.01)
                continue
            if master.connection_pool.get_master_address()[1] != old_port:
                first_new.append(time.monotonic())
            time.sleep(0.002)

    threads = [threading.Thread(target=listen, daemon=True), threading.Thread(target=write, daemon=True)]
    try:
        for t in threads:
            t.start()
        time.sleep(0.5)
        killed = time.monotonic()
        nodes[0].kill()
        wait_until(lambda: switch_at and first_new, down_after / 1000 + 60, "failover")
        return switch_at[0] - killed, first_new[0] - killed
    finally:
        stop.set()
        for t in threads:
            t.join(5)
        for sub in subs:
            sub.close()
        sentinel.close()
        for p in [*sentinels, *nodes]:
            p.stop()
        shutil.rmtree(root, ignore_errors=True)


def describe(xs: list[float]) -> str:
    return f"{min(xs):6.2f} {statistics.median(xs):6.2f} {max(xs):6.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--down-after", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--only", choices=["kvcluster", "redis"])
    ns = parser.parse_args()
    kinds = [ns.only] if ns.only else ["kvcluster", "redis"]
    if "redis" in kinds and not (shutil.which("redis-sentinel") and shutil.which("redis-server")):
        print("redis-sentinel/redis-server not installed (make deps): measuring kvcluster only")
        kinds = ["kvcluster"]
    results: dict[tuple[str, int], tuple[list[float], list[float]]] = {}
    for down_after in ns.down_after:
        for run in range(ns.runs):
            for kind in kinds:  # alternate, so load on the shared machine hits both alike
                switch, client = one_run(kind, down_after)
                results.setdefault((kind, down_after), ([], []))
                results[(kind, down_after)][0].append(switch)
                results[(kind, down_after)][1].append(client)
                print(f"{kind:9} down-after {down_after:5} run {run + 1}: switch {switch:.2f} s, client {client:.2f} s")
    print()
    print("seconds from kill -9 of the leader    switch-master (min med max)   client writes (min med max)")
    for (kind, down_after), (switch, client) in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{kind:9} down-after {down_after:5} ms        {describe(switch)}          {describe(client)}")
    for down_after in ns.down_after:
        if ("redis", down_after) in results and ("kvcluster", down_after) in results:
            k = statistics.median(results[("kvcluster", down_after)][1])
            r = statistics.median(results[("redis", down_after)][1])
            print(f"down-after {down_after}: kvcluster / redis client-side median = {k / r:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
