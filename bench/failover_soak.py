"""kill -9 failover soak: how many acknowledged writes does a leader failure lose?

    .venv/bin/python bench/failover_soak.py [--iterations 200] [--durability semi-sync|async|both]

Three real ``kvcluster node`` processes on loopback (a leader and two replicas). Each
iteration: writer threads (one connection each) SET unique keys as fast as they can and
remember every key that got ``+OK``; the leader is SIGKILLed at a random moment; the replica
with the highest ``slave_repl_offset`` is promoted with ``REPLICAOF NO ONE EPOCH n`` (what the
sentinels do), the other replica is pointed at it, and every acknowledged key is looked up on
the new leader. The killed node restarts as a replica of the new leader (it has no persisted
data yet, so it full-syncs) and the next iteration begins.

semi-sync must lose nothing (docs/guarantees.md); async reports what it loses. The CI test
(tests/test_replication.py) runs a 5-iteration version of the semi-sync loop.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from helpers import NodeProcess, wait_until


def connect(node: NodeProcess, timeout: float = 10) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=timeout, retry=Retry(NoBackoff(), 0))


def online_replicas(node: NodeProcess) -> int:
    info = connect(node).info("replication")
    return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v["state"] == "online")


def write_until_killed(leader: NodeProcess, tag: str, threads: int, kill_after: float) -> tuple[list[str], int]:
    acked: list[list[str]] = [[] for _ in range(threads)]
    errors = [0] * threads

    def writer(i: int) -> None:
        c = connect(leader)
        n = 0
        while True:
            key = f"w:{tag}:{i}:{n}"
            n += 1
            try:
                if c.set(key, n):
                    acked[i].append(key)
            except redis.ResponseError:
                errors[i] += 1  # refused, or not confirmed in time (semi-sync): not acknowledged
            except (redis.ConnectionError, redis.TimeoutError):
                return

    workers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    time.sleep(kill_after)
    leader.kill()
    for w in workers:
        w.join(30)
    return [k for a in acked for k in a], sum(errors)


def missing_on(node: NodeProcess, keys: list[str]) -> int:
    c = connect(node, timeout=30)
    present = 0
    for i in range(0, len(keys), 1000):
        present += c.exists(*keys[i : i + 1000])
    return len(keys) - present


def soak(mode: str, iterations: int, threads: int, seed: int, workdir: Path) -> dict[str, float]:
    rnd = random.Random(seed)
    args = ["--durability", mode, "--semi-sync-timeout", "3000", "--loglevel", "warning"]
    leader = NodeProcess(workdir / f"{mode}-n0", *args).start()
    nodes = [leader]
    for i in (1, 2):
        nodes.append(NodeProcess(workdir / f"{mode}-n{i}", *args, "--replicaof", "127.0.0.1", str(leader.port)).start())
    lost_per_failover: list[int] = []
    acked_total = unconfirmed = 0
    failover_seconds: list[float] = []
    try:
        for epoch in range(1, iterations + 1):
            wait_until(lambda leader=leader: online_replicas(leader) == 2, 60, what="two online replicas")
            acked, errors = write_until_killed(leader, f"e{epoch}", threads, rnd.uniform(0.05, 0.8))
            started = time.monotonic()
            dead = leader
            alive = [n for n in nodes if n is not dead]
            offsets = {n.port: connect(n).info("replication")["slave_repl_offset"] for n in alive}
            leader = max(alive, key=lambda n: offsets[n.port])
            connect(leader).execute_command("REPLICAOF", "NO", "ONE", "EPOCH", str(epoch))
            for n in alive:
                if n is not leader:
                    connect(n).execute_command("REPLICAOF", "127.0.0.1", str(leader.port), "EPOCH", str(epoch))
            failover_seconds.append(time.monotonic() - started)
            lost = missing_on(leader, acked)
            lost_per_failover.append(lost)
            acked_total += len(acked)
            unconfirmed += errors
            print(
                f"{mode:9} #{epoch:4}: {len(acked):6} acknowledged, {lost:4} lost, {errors:3} refused/unconfirmed",
                flush=True,
            )
            dead.args = [*args, "--replicaof", "127.0.0.1", str(leader.port)]
            dead.start()
    finally:
        for n in nodes:
            n.stop()
    return {
        "iterations": len(lost_per_failover),
        "acknowledged": acked_total,
        "lost": sum(lost_per_failover),
        "failovers_with_loss": sum(1 for x in lost_per_failover if x),
        "max_lost_in_one_failover": max(lost_per_failover, default=0),
        "mean_lost_per_failover": statistics.fmean(lost_per_failover) if lost_per_failover else 0.0,
        "refused_or_unconfirmed": unconfirmed,
        "promotion_ms_p50": 1000 * statistics.median(failover_seconds) if failover_seconds else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--durability", choices=("semi-sync", "async", "both"), default="both")
    parser.add_argument("--threads", type=int, default=4, help="writer connections")
    parser.add_argument("--seed", type=int, default=1)
    opts = parser.parse_args()
    modes = ("semi-sync", "async") if opts.durability == "both" else (opts.durability,)
    workdir = Path(tempfile.mkdtemp(prefix="failover-soak-"))
    results = {}
    try:
        for mode in modes:
            results[mode] = soak(mode, opts.iterations, opts.threads, opts.seed, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(f"kill -9 failover soak, {opts.iterations} iterations, {opts.threads} writer connections")
    for mode, r in results.items():
        print(
            f"{mode:9}: {r['acknowledged']} acknowledged writes, {r['lost']} lost "
            f"({r['failovers_with_loss']}/{r['iterations']} failovers lost some, "
            f"at most {r['max_lost_in_one_failover']}, "
            f"mean {r['mean_lost_per_failover']:.2f}); {r['refused_or_unconfirmed']} refused/unconfirmed; "
            f"promotion {r['promotion_ms_p50']:.0f} ms p50"
        )
    bad = results.get("semi-sync", {}).get("lost", 0)
    if bad:
        print(f"FAIL: semi-sync lost {bad} acknowledged writes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
