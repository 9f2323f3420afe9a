"""Replication between real processes: convergence, partial resync, PSYNC2 promotion, epochs,
replica behaviour, WAIT, semi-sync durability under kill -9, and a real redis-server both ways.

Every node is a real ``kvcluster node`` process on a free port in its own temp dir, driven with
redis-py. Convergence is checked the way a user would: the leader's offset reached by every
replica, then ``DEBUG DIGEST`` (Redis's own dataset digest, TTLs included) and the key counts of
every database equal. Timings are only ever asserted as generous ranges (shared 2-core CI).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from helpers import NodeProcess, RawClient, RedisServerProcess, wait_until
from redis.backoff import NoBackoff
from redis.retry import Retry

DEADLINE = 30.0


# -- fixtures and helpers ----------------------------------------------------------------------------


class Procs:
    """Starts nodes in ``tmp_path``; everything started is stopped (by PID) at the end of the test."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.started: list[Any] = []

    def node(self, name: str, *args: str) -> NodeProcess:
        proc = NodeProcess(self.tmp / name, *args)
        self.started.append(proc)
        return proc.start()

    def replica(self, name: str, leader: Any, *args: str) -> NodeProcess:
        return self.node(name, "--replicaof", "127.0.0.1", str(leader.port), *args)

    def redis(self, name: str, *args: str) -> RedisServerProcess:
        proc = RedisServerProcess(self.tmp / name, *args)
        self.started.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.started:
            p = proc.proc
            if p is not None and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)  # a SIGSTOPped process would ignore SIGTERM
            proc.stop()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Procs]:
    p = Procs(tmp_path)
    try:
        yield p
    finally:
        p.close()


def client(proc: Any, **kwargs: Any) -> redis.Redis:
    kwargs.setdefault("socket_timeout", 20)
    kwargs.setdefault("retry", Retry(NoBackoff(), 0))  # a retried write would blur what was acknowledged
    return redis.Redis(host="127.0.0.1", port=proc.port, **kwargs)


def repl_info(c: redis.Redis) -> dict[str, Any]:
    return c.info("replication")


def stats(c: redis.Redis) -> dict[str, Any]:
    return c.info("stats")


def link_up(c: redis.Redis) -> bool:
    return repl_info(c).get("master_link_status") == "up"


def wait_link_up(*clients: redis.Redis, timeout: float = DEADLINE) -> None:
    for c in clients:
        wait_until(lambda c=c: link_up(c), timeout, what="the replica's link to come up")


def online_replicas(c: redis.Redis) -> int:
    info = repl_info(c)
    return sum(1 for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v["state"] == "online")


def digest(c: redis.Redis) -> bytes:
    return c.execute_command("DEBUG DIGEST")


def key_counts(c: redis.Redis) -> dict[str, int]:
    return {db: v["keys"] for db, v in c.info("keyspace").items()}


def wait_converged(leader: redis.Redis, replicas: list[redis.Redis], timeout: float = DEADLINE) -> bytes:
    """Wait until every replica has the leader's offset, digest and key counts; returns the digest."""

    def check() -> bytes:
        offset = repl_info(leader)["master_repl_offset"]
        behind = [repl_info(r)["slave_repl_offset"] for r in replicas]
        if any(o != offset for o in behind):
            raise AssertionError(f"replica offsets {behind}, leader {offset}")
        want, counts = digest(leader), key_counts(leader)
        if repl_info(leader)["master_repl_offset"] != offset:
            raise AssertionError("the leader wrote meanwhile (expiry): again")
        got = [(digest(r), key_counts(r)) for r in replicas]
        if any(g != (want, counts) for g in got):
            raise AssertionError(f"leader {want!r} {counts}, replicas {got}")
        return want

    try:
        return wait_until(check, timeout, interval=0.1, what="replicas to converge")
    except TimeoutError as e:
        raise AssertionError(f"{e}\nfirst differences: {[_differences(leader, r) for r in replicas]}") from None


def _differences(leader: redis.Redis, replica: redis.Redis, limit: int = 5) -> list[Any]:
    """A few keys whose DEBUG DIGEST-VALUE or TTL differ (for failure messages)."""
    out: list[Any] = []
    port = replica.connection_pool.connection_kwargs["port"]
    for name in leader.info("keyspace"):
        db = int(name[2:])
        lc = redis.Redis(host="127.0.0.1", port=leader.connection_pool.connection_kwargs["port"], db=db)
        rc = redis.Redis(host="127.0.0.1", port=port, db=db)
        for key in set(lc.keys("*")) | set(rc.keys("*")):
            a = (lc.execute_command("DEBUG", "DIGEST-VALUE", key), lc.pexpiretime(key), lc.type(key))
            b = (rc.execute_command("DEBUG", "DIGEST-VALUE", key), rc.pexpiretime(key), rc.type(key))
            if a != b:
                out.append((db, key, a, b))
                if len(out) >= limit:
                    return out
    return out


def pause(proc: Any) -> None:
    os.kill(proc.proc.pid, signal.SIGSTOP)


def resume(proc: Any) -> None:
    os.kill(proc.proc.pid, signal.SIGCONT)


def fill(c: redis.Redis, n: int, prefix: str = "pre", db_ttl: bool = True) -> None:
    """``n`` keys of every type, some with (long) TTLs."""
    p = c.pipeline(transaction=False)
    for i in range(n):
        kind = i % 6
        key = f"{prefix}:{i}"
        if kind == 0:
            p.set(key, f"value-{i}" * (1 + i % 5))
        elif kind == 1:
            p.rpush(key, *[f"e{j}" for j in range(1 + i % 7)])
        elif kind == 2:
            p.hset(key, mapping={f"f{j}": j for j in range(1 + i % 5)})
        elif kind == 3:
            p.sadd(key, *[f"m{j}" for j in range(1 + i % 6)])
        elif kind == 4:
            p.zadd(key, {f"z{j}": j * 1.5 for j in range(1 + i % 4)})
        else:
            p.set(key, i, ex=3600)
        if db_ttl and i % 10 == 3:
            p.expire(key, 1800 + i)
        if len(p) >= 500:
            p.execute()
    p.execute()


# -- the mixed write load -------------------------------------------------------------------------------


def _random_write(p: Any, rnd: random.Random, db: int) -> None:
    k = rnd.randrange(150)
    roll = rnd.randrange(30)
    if roll == 0:
        p.set(f"s:{k}", rnd.randbytes(rnd.choice((1, 8, 100))))
    elif roll == 1:
        p.set(f"t:{k}", "short-lived", px=rnd.randint(5, 400))
    elif roll == 2:
        p.set(f"t:{k}", "short-lived", ex=1, nx=rnd.random() < 0.5)
    elif roll == 3:
        p.incr(f"n:{k}")
    elif roll == 4:
        p.incrbyfloat(f"f:{k}", rnd.choice((0.1, -2.5, 1e3, 3.3333)))
    elif roll == 5:
        p.append(f"s:{k}", "+")
        p.setrange(f"s:{k}", rnd.randrange(20), "xy")
    elif roll == 6:
        p.hset(f"h:{k}", f"f{rnd.randrange(10)}", rnd.randrange(1000))
    elif roll == 7:
        p.hincrby(f"h:{k}", "count", 1)
        p.hincrbyfloat(f"h:{k}", "float", rnd.choice((0.5, 1.1, -7.25)))
    elif roll == 8:
        p.hdel(f"h:{k}", f"f{rnd.randrange(10)}")
    elif roll == 9:
        p.rpush(f"l:{k}", *[rnd.randrange(100) for _ in range(rnd.randint(1, 4))])
    elif roll == 10:
        p.lpush(f"l:{k}", "head")
        p.ltrim(f"l:{k}", 0, 20)
    elif roll == 11:
        p.lpop(f"l:{k}")
        p.rpoplpush(f"l:{k}", f"l:{(k + 1) % 150}")
    elif roll == 12:
        p.sadd(f"S:{k}", *[f"m{rnd.randrange(30)}" for _ in range(rnd.randint(1, 5))])
    elif roll == 13:
        p.spop(f"S:{k}")  # random on the leader: replicated as SREM of what it chose
        p.spop(f"S:{k}", 2)
    elif roll == 14:
        p.srem(f"S:{k}", f"m{rnd.randrange(30)}")
        p.smove(f"S:{k}", f"S:{(k + 7) % 150}", f"m{rnd.randrange(30)}")
    elif roll == 15:
        p.zadd(f"z:{k}", {f"m{rnd.randrange(20)}": rnd.random() * 100})
    elif roll == 16:
        p.zincrby(f"z:{k}", rnd.choice((1, 0.25, -3)), f"m{rnd.randrange(20)}")
        p.zrem(f"z:{k}", f"m{rnd.randrange(20)}")
    elif roll == 17:
        p.zpopmin(f"z:{k}")
    elif roll == 18:
        # Collections and counters with short TTLs: they expire during the run.
        p.pexpire(f"{rnd.choice('shlSzn')}:{k}", rnd.randint(5, 300))
    elif roll == 19:
        p.expire(f"{rnd.choice('shlSzn')}:{k}", rnd.choice((1, 2, 100)))
    elif roll == 20:
        p.persist(f"{rnd.choice('shlSznt')}:{k}")
    elif roll == 21:
        p.delete(f"{rnd.choice('shlSznt')}:{k}", f"s:{(k + 3) % 150}")
    elif roll == 22:
        t = rnd.choice("shlSzn")
        p.rename(f"{t}:{k}", f"{t}:{rnd.randrange(150)}")  # an error when the source is missing: fine
    elif roll == 23:
        p.getex(f"s:{k}", px=rnd.randint(10, 500))
    elif roll == 24:
        p.getdel(f"n:{k}")
    elif roll == 25:
        p.execute_command("SETEX", f"t:{k}", 1, "x")
        p.execute_command("PSETEX", f"t:{(k + 1) % 150}", rnd.randint(5, 200), "y")
    elif roll == 26:
        p.mset({f"s:{k}": "m1", f"s:{(k + 1) % 150}": "m2"})
    elif roll == 27:
        p.lrem(f"l:{k}", 0, rnd.randrange(100))
        p.linsert(f"l:{k}", "BEFORE", "head", "ins")
    elif roll == 28:
        p.hsetnx(f"h:{k}", f"f{rnd.randrange(10)}", "nx")
        p.zadd(f"z:{k}", {"inc": 1}, incr=True)
    else:
        p.copy(f"s:{k}", f"s:{(k + 11) % 150}", replace=True)


class Load:
    """Writer threads running the mixed load until ``max_ops`` each, or until stopped."""

    def __init__(self, proc: Any, dbs: tuple[int, ...] = (0, 1, 3), max_ops: int = 12000, seed: int = 7):
        self.proc = proc
        self.stop = threading.Event()
        self.ops = [0] * len(dbs)
        self.errors: list[BaseException] = []
        self.threads = [
            threading.Thread(target=self._run, args=(i, db, max_ops, seed + i), daemon=True) for i, db in enumerate(dbs)
        ]

    def _run(self, index: int, db: int, max_ops: int, seed: int) -> None:
        rnd = random.Random(seed)
        c = client(self.proc, db=db)
        try:
            while self.ops[index] < max_ops and not self.stop.is_set():
                transaction = rnd.random() < 0.15
                p = c.pipeline(transaction=transaction)
                if transaction and rnd.random() < 0.5:
                    # A transaction that writes in two databases: the stream must SELECT inside it.
                    other = (db + 5) % 16
                    _random_write(p, rnd, db)
                    p.execute_command("SELECT", other)
                    for _ in range(rnd.randint(1, 4)):
                        _random_write(p, rnd, other)
                    p.execute_command("SELECT", db)
                for _ in range(rnd.randint(5, 40)):
                    _random_write(p, rnd, db)
                if db == 3 and rnd.random() < 0.03:
                    p.flushdb()
                n = len(p)
                p.execute(raise_on_error=False)
                self.ops[index] += n
        except BaseException as e:
            self.errors.append(e)
        finally:
            c.close()

    def start(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    @property
    def total(self) -> int:
        return sum(self.ops)

    def join(self, timeout: float = 120) -> int:
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), "a writer thread hung"
        assert not self.errors, self.errors
        return self.total


# -- 1. convergence under a mixed load ---------------------------------------------------------------------


def test_two_replicas_converge_under_a_mixed_load_one_attached_mid_load(procs: Procs) -> None:
    leader = procs.node("leader")
    lc = client(leader)
    fill(lc, 20000)  # enough for the mid-load full sync to stream in many chunks
    fill(client(leader, db=5), 3000, prefix="db5")
    first = procs.replica("r1", leader)
    r1 = client(first)
    wait_link_up(r1)
    # Unbounded count (stopped below): on a slow machine the second sync can outlast any fixed
    # number of writes, and then "writes after the sync" would never come.
    load = Load(leader, max_ops=10**9).start()
    wait_until(lambda: load.total > 3000, DEADLINE, what="the load to get going")
    # A second replica attaches while the writes go on: the point-in-time snapshot plus the
    # writes buffered while it streams must give exactly the leader's dataset.
    second = procs.replica("r2", leader)
    r2 = client(second)
    wait_link_up(r2)
    assert not load.stop.is_set() and all(t.is_alive() for t in load.threads), "the load ended before the sync"
    at_sync = load.total
    wait_until(lambda: load.total > at_sync + 3000, DEADLINE, what="writes after the sync")
    load.stop.set()
    total = load.join()
    assert total >= 9000
    wait_converged(lc, [r1, r2])
    assert lc.dbsize() == r1.dbsize() == r2.dbsize() > 20000
    assert stats(lc)["sync_full"] == 2 and stats(lc)["sync_partial_err"] == 0
    # Keys expired on the leader during the run, and the replicas expired none themselves.
    assert stats(lc)["expired_keys"] > 0
    assert stats(r1)["expired_keys"] == stats(r2)["expired_keys"] == 0
    assert "Full resync from master" in second.log()


def test_a_forked_full_sync_under_load_gives_the_leaders_dataset(procs: Procs) -> None:
    # Every full sync forks here (the threshold is 1 key): the child streams the snapshot of
    # the moment of the PSYNC while the leader keeps taking writes, buffered for the replica.
    leader = procs.node("leader", "--repl-fork-sync-min-keys", "1")
    lc = client(leader)
    fill(lc, 5000)
    load = Load(leader, max_ops=10**9).start()
    wait_until(lambda: load.total > 2000, DEADLINE, what="the load to get going")
    second = procs.replica("r", leader)
    rc = client(second)
    wait_link_up(rc)
    at_sync = load.total
    wait_until(lambda: load.total > at_sync + 2000, DEADLINE, what="writes after the sync")
    load.stop.set()
    load.join()
    wait_converged(lc, [rc])
    assert lc.dbsize() == rc.dbsize() > 5000
    assert "forked" in leader.log() and "Full resync from master" in second.log()


# -- 2. partial and full resynchronisation --------------------------------------------------------------------


def test_partial_resync_after_a_killed_link_or_a_paused_replica_and_full_beyond_the_backlog(procs: Procs) -> None:
    # repl-timeout must exceed the ping period (as in Redis), or an idle link times out.
    leader = procs.node("leader", "--repl-timeout", "2", "--repl-ping-replica-period", "1")
    lc = client(leader)
    fill(lc, 2000)
    rp = procs.replica("r", leader, "--repl-timeout", "2")
    rc = client(rp)
    wait_link_up(rc)
    wait_converged(lc, [rc])
    base = stats(lc)
    assert (base["sync_full"], base["sync_partial_ok"]) == (1, 0)

    def partial_resyncs() -> int:
        s = stats(lc)
        assert s["sync_full"] == base["sync_full"], "a full sync happened"
        return s["sync_partial_ok"]

    # (a) The leader drops the link: the replica comes back with PSYNC and continues, in the
    # database the stream had selected (the leader sends no new SELECT for db 7).
    l7 = client(leader, db=7)
    l7.set("in-db7", "1")
    wait_converged(lc, [rc])
    assert lc.client_kill_filter(_type="replica") == 1
    l7.set("after-kill", "1")
    wait_until(lambda: partial_resyncs() == 1, DEADLINE, what="a partial resync after CLIENT KILL")
    wait_converged(lc, [rc])
    assert client(rp, db=7).get("after-kill") == b"1" and rc.exists("after-kill") == 0

    # (b) The replica drops its side (CLIENT KILL TYPE master on the replica).
    assert rc.client_kill_filter(_type="master") == 1
    wait_until(lambda: partial_resyncs() == 2, DEADLINE, what="a partial resync after killing the master link")
    wait_converged(lc, [rc])

    # (c) The replica stops past repl-timeout: the leader drops it; after SIGCONT it continues.
    pause(rp)
    try:
        fill(lc, 300, prefix="while-stopped")
        wait_until(lambda: online_replicas(lc) == 0, DEADLINE, what="the leader to drop the stopped replica")
    finally:
        resume(rp)
    wait_until(lambda: partial_resyncs() == 3, DEADLINE, what="a partial resync after SIGCONT")
    wait_converged(lc, [rc])

    # (d) Writes beyond the backlog while the replica is stopped: a full sync, converged.
    lc.config_set("repl-backlog-size", "16kb")  # resized at runtime, newest bytes kept
    assert repl_info(lc)["repl_backlog_size"] == 16384
    pause(rp)
    try:
        fill(lc, 3000, prefix="beyond-backlog")  # ~100 kB of stream
        assert repl_info(lc)["repl_backlog_histlen"] == 16384
        wait_until(lambda: online_replicas(lc) == 0, DEADLINE, what="the leader to drop the stopped replica")
    finally:
        resume(rp)
    wait_until(lambda: stats(lc)["sync_full"] == base["sync_full"] + 1, DEADLINE, what="a full resync")
    s = stats(lc)
    assert s["sync_partial_ok"] == 3 and s["sync_partial_err"] == 1
    wait_link_up(rc)
    wait_converged(lc, [rc])
    assert rc.dbsize() == lc.dbsize() == 2000 + 300 + 3000


# -- 3. promotion with PSYNC2 ---------------------------------------------------------------------------------


def test_promoted_replica_takes_its_sibling_and_the_old_leader_with_partial_resyncs(procs: Procs) -> None:
    # A long ping period: the old leader's PINGs would otherwise extend its history past the split.
    a = procs.node("a", "--repl-ping-replica-period", "60")
    ac = client(a)
    fill(ac, 3000)
    b, c = procs.replica("b", a), procs.replica("c", a)
    bc, cc = client(b), client(c)
    wait_link_up(bc, cc)
    fill(ac, 500, prefix="more")
    assert ac.wait(2, 10000) == 2
    wait_converged(ac, [bc, cc])
    old_id, split = repl_info(ac)["master_replid"], repl_info(bc)["slave_repl_offset"]

    assert bc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "2") == b"OK"
    info = repl_info(bc)
    assert info["role"] == "master" and bc.execute_command("EPOCH") == 2
    # PSYNC2: the old history stays valid up to the split (Redis's field conventions).
    assert (info["master_replid2"], info["second_repl_offset"]) == (old_id, split + 1)
    assert info["master_replid"] != old_id
    assert cc.execute_command("REPLICAOF", "127.0.0.1", str(b.port), "EPOCH", "2") == b"OK"
    assert ac.execute_command("REPLICAOF", "127.0.0.1", str(b.port), "EPOCH", "2") == b"OK"
    wait_link_up(cc, ac)
    wait_until(lambda: online_replicas(bc) == 2, DEADLINE, what="both to follow B")
    s = stats(bc)
    assert (s["sync_partial_ok"], s["sync_full"], s["sync_partial_err"]) == (2, 0, 0)
    assert "Partial resynchronization request" in b.log()
    bc.set("written-on-b", "yes")
    fill(bc, 500, prefix="on-b")
    wait_converged(bc, [ac, cc])
    assert ac.get("written-on-b") == cc.get("written-on-b") == b"yes"
    assert ac.execute_command("EPOCH") == cc.execute_command("EPOCH") == 2
    role = ac.execute_command("ROLE")
    assert role[0] == b"slave" and role[2] == b.port and role[3] == b"connected"
    with pytest.raises(redis.ReadOnlyError):
        ac.set("x", "1")


# -- 4. epochs and fencing ------------------------------------------------------------------------------------


def test_a_leader_fenced_by_a_newer_epoch_refuses_writes_and_epochs_persist(procs: Procs) -> None:
    n = procs.node("n")
    nc = client(n)
    assert nc.execute_command("EPOCH") == 0
    assert nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "5") == b"OK"
    assert nc.execute_command("EPOCH") == 5
    assert nc.set("k", "1")
    nc.execute_command("EPOCH", "6")  # a sentinel or a peer speaks of epoch 6
    with pytest.raises(redis.ResponseError) as e:
        nc.set("k", "2")
    assert str(e.value).startswith("FENCED")
    assert repl_info(nc)["kvcluster_fenced"] == 1
    assert nc.get("k") == b"1"  # reads still served
    with pytest.raises(redis.ResponseError) as e:
        nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "3")  # behind the node's own epoch
    assert "epoch 3" in str(e.value)
    assert nc.execute_command("EPOCH") == 5
    assert nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "7") == b"OK"
    assert nc.set("k", "3") and nc.get("k") == b"3"
    assert repl_info(nc)["kvcluster_fenced"] == 0
    # The epoch is on disk, and survives a restart.
    assert (n.dir / "kvcluster-epoch").read_text().strip() == "7"
    nc.close()
    assert n.stop() == 0
    n.start()
    nc = client(n)
    assert nc.execute_command("EPOCH") == 7
    with pytest.raises(redis.ResponseError):
        nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "6")
    # Fenced, then restarted: still fenced (a restart must not turn it back into a writable leader).
    nc.execute_command("EPOCH", "9")
    nc.close()
    assert n.stop() == 0
    n.start()
    nc = client(n)
    with pytest.raises(redis.ResponseError) as e:
        nc.set("k", "4")
    assert str(e.value).startswith("FENCED")
    assert nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "9") == b"OK"
    assert nc.set("k", "5")


def test_a_node_never_follows_a_leader_at_a_lower_epoch(procs: Procs) -> None:
    old = procs.node("old")
    oc = client(old)
    assert oc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "4") == b"OK"
    oc.set("leader-data", "x")
    new = procs.node("new")
    nc = client(new)
    assert nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "5") == b"OK"
    nc.set("own-data", "y")
    with pytest.raises(redis.ResponseError) as e:
        nc.execute_command("REPLICAOF", "NO", "ONE", "EPOCH", "3")
    assert "epoch 3" in str(e.value) and nc.execute_command("EPOCH") == 5
    assert nc.execute_command("REPLICAOF", "127.0.0.1", str(old.port)) == b"OK"
    wait_until(lambda: "epoch 4" in new.log() and "epoch 5" in new.log(), DEADLINE, what="the refusal in the log")
    info = repl_info(nc)
    assert info["master_link_status"] == "down" and info["kvcluster_epoch"] == 5
    # Several attempts later, still nothing of the old leader's data.
    wait_until(lambda: new.log().count("epoch 4") >= 2, DEADLINE, what="a retry")
    assert nc.get("own-data") == b"y" and nc.exists("leader-data") == 0 and nc.dbsize() == 1
    assert stats(oc)["sync_full"] == 0
    # The old leader learned of epoch 5 from the handshake: it is fenced.
    with pytest.raises(redis.ResponseError) as e:
        oc.set("leader-data", "z")
    assert str(e.value).startswith("FENCED")


def test_a_replica_that_learns_a_newer_epoch_stops_following_its_leader(procs: Procs) -> None:
    leader = procs.node("leader")
    lc = client(leader)
    rp = procs.replica("r", leader)
    rc = client(rp)
    wait_link_up(rc)
    lc.set("before", "1")
    assert lc.wait(1, 10000) == 1
    assert rc.execute_command("EPOCH", "3") == 3  # a sentinel promoted someone else at epoch 3
    wait_until(lambda: not link_up(rc), DEADLINE, what="the replica to drop its leader")
    assert "dropping the link" in rp.log()
    # Its reconnection tells the leader of epoch 3: the leader is fenced, the replica refuses it.
    wait_until(lambda: repl_info(lc)["kvcluster_fenced"] == 1, DEADLINE, what="the leader to be fenced")
    with pytest.raises(redis.ResponseError) as e:
        lc.set("after", "1")
    assert str(e.value).startswith("FENCED")
    assert not link_up(rc) and rc.exists("after") == 0 and rc.get("before") == b"1"


# -- 5. replica behaviour ---------------------------------------------------------------------------------------


def test_replica_is_read_only_and_waits_for_the_leaders_expiry(procs: Procs) -> None:
    leader = procs.node("leader")
    lc = client(leader)
    rp = procs.replica("r", leader)
    rc = client(rp)
    wait_link_up(rc)
    with pytest.raises(redis.ResponseError) as e:
        rc.set("k", "v")
    assert str(e.value) == "You can't write against a read only replica."
    with RawClient(rp.port) as raw:
        assert raw.call("SET", "k", "v") == b"-READONLY You can't write against a read only replica.\r\n"
        assert raw.call("MULTI") == b"+OK\r\n"
        assert raw.call("INCR", "n") == b"+QUEUED\r\n"
        assert raw.call("EXEC").startswith(b"-EXECABORT")

    lc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")  # the leader's DEL comes only when we ask
    at = int(time.time() * 1000) + 1000
    lc.set("stays", "1")
    lc.set("dies", "1")
    lc.pexpireat("dies", at)
    lc.hset("dies-hash", "f", "v")
    lc.pexpireat("dies-hash", at)
    wait_until(lambda: rc.dbsize() == 3, DEADLINE, what="the keys on the replica")
    assert rc.pexpiretime("dies") == rc.pexpiretime("dies-hash") == at or time.time() * 1000 >= at
    # Once their time passes the replica hides them, but keeps them until the leader says DEL.
    wait_until(lambda: rc.get("dies") is None, DEADLINE, what="the key to expire logically")
    assert rc.exists("dies", "dies-hash") == 0
    assert rc.ttl("dies") == -2 and rc.hgetall("dies-hash") == {}
    assert sorted(rc.keys("*")) == [b"stays"]
    assert rc.dbsize() == 3
    deadline = time.monotonic() + 1.0  # a few of the replica's expiry cycles: it deletes nothing
    while time.monotonic() < deadline:
        assert rc.dbsize() == 3 and stats(rc)["expired_keys"] == 0
        time.sleep(0.05)
    assert lc.get("dies") is None  # the leader expires it on access and replicates the DEL
    wait_until(lambda: rc.dbsize() == 2, DEADLINE, what="the leader's DEL")
    lc.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "1")
    wait_until(lambda: rc.dbsize() == 1, DEADLINE, what="the leader's active expiry")
    wait_converged(lc, [rc])


def test_a_replica_that_must_not_serve_stale_data_says_masterdown(procs: Procs) -> None:
    leader = procs.node("leader")
    lc = client(leader)
    lc.set("k", "v")
    rp = procs.replica("r", leader, "--replica-serve-stale-data", "no")
    rc = client(rp)
    wait_link_up(rc)
    assert rc.get("k") == b"v"
    leader.kill()
    wait_until(lambda: not link_up(rc), DEADLINE, what="the replica to see its leader down")
    with RawClient(rp.port) as raw:
        assert raw.call("GET", "k") == (
            b"-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n"
        )
        assert raw.call("PING") == b"+PONG\r\n"
    assert repl_info(rc)["master_link_status"] == "down"
    rc.config_set("replica-serve-stale-data", "yes")
    assert rc.get("k") == b"v"


def test_min_replicas_to_write_refuses_writes_when_the_replica_lags(procs: Procs) -> None:
    leader = procs.node("leader", "--min-replicas-to-write", "1", "--min-replicas-max-lag", "2")
    lc = client(leader)
    with pytest.raises(redis.ResponseError) as e:
        lc.set("k", "0")
    assert str(e.value) == "NOREPLICAS Not enough good replicas to write."
    rp = procs.replica("r", leader)
    rc = client(rp)
    wait_link_up(rc)
    wait_until(lambda: lc.set("k", "1"), DEADLINE, what="writes once the replica is online")
    pause(rp)
    stopped = time.monotonic()
    try:

        def refused() -> bool:
            try:
                lc.set("k", "2")
                return False
            except redis.ResponseError as e:
                assert str(e) == "NOREPLICAS Not enough good replicas to write.", e
                return True

        wait_until(refused, DEADLINE, interval=0.05, what="NOREPLICAS")
        elapsed = time.monotonic() - stopped
        assert 0.9 < elapsed < 20, elapsed  # lag 2 s: the last ACK was at most a second before the stop
        with RawClient(leader.port) as raw:
            assert raw.call("SET", "k", "3").startswith(b"-NOREPLICAS ")
    finally:
        resume(rp)
    wait_until(lambda: lc.set("k", "4"), DEADLINE, what="writes again once the replica acks")
    wait_converged(lc, [rc])
    assert rc.get("k") == b"4"


# -- 6. WAIT -------------------------------------------------------------------------------------------


def test_wait_counts_acknowledging_replicas_and_keeps_pipelines_in_order(procs: Procs) -> None:
    leader = procs.node("leader")
    lc = client(leader)
    p1, p2 = procs.replica("r1", leader), procs.replica("r2", leader)
    wait_link_up(client(p1), client(p2))
    lc.set("a", "1")
    assert lc.wait(2, 1000) == 2
    started = time.monotonic()
    assert lc.wait(0, 0) == 2  # nothing to wait for
    assert time.monotonic() - started < 5
    pause(p2)
    try:
        lc.set("a", "2")
        started = time.monotonic()
        assert lc.wait(2, 500) == 1
        assert 0.4 < time.monotonic() - started < 10
        # Pipelined behind a blocked WAIT: answered after it, in order.
        with socket.create_connection(("127.0.0.1", leader.port), timeout=20) as s:
            s.sendall(
                b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\n1\r\n"
                b"*3\r\n$4\r\nWAIT\r\n$1\r\n2\r\n$3\r\n500\r\n"
                b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n"
                b"*1\r\n$4\r\nPING\r\n"
            )
            got = b""
            want = b"+OK\r\n:1\r\n$1\r\n1\r\n+PONG\r\n"
            while len(got) < len(want):
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
                if got == b"+OK\r\n":
                    started = time.monotonic()
            assert got == want
            assert time.monotonic() - started > 0.3
        assert lc.wait(1, 0) == 1  # blocks until one acks: r1 does
    finally:
        resume(p2)
    assert lc.wait(2, 20000) == 2


# -- 7. semi-sync durability ----------------------------------------------------------------------------------


def test_semi_sync_refuses_or_reports_writes_no_replica_confirmed(procs: Procs) -> None:
    leader = procs.node("leader", "--durability", "semi-sync", "--semi-sync-timeout", "500")
    lc = client(leader)
    with pytest.raises(redis.ResponseError) as e:
        lc.set("early", "1")
    assert str(e.value).startswith("NOREPLICAS semi-sync needs 1 connected replica")  # nothing applied
    with RawClient(leader.port) as raw:
        assert raw.call("SET", "early", "1").startswith(b"-NOREPLICAS ")
    assert lc.get("early") is None
    rp = procs.replica("r", leader)
    rc = client(rp)
    wait_link_up(rc)
    wait_until(lambda: online_replicas(lc) == 1, DEADLINE)
    for i in range(50):
        assert lc.set(f"k{i}", i)
        assert rc.get(f"k{i}") == str(i).encode()  # acknowledged means the replica has it, now
    pause(rp)
    try:
        started = time.monotonic()
        with RawClient(leader.port) as raw:
            reply = raw.call("SET", "maybe", "1")
        assert 0.4 < time.monotonic() - started < 10
        assert reply.startswith(b"-NOREPLICAS ") and b"may be lost" in reply, reply
        assert lc.get("maybe") == b"1"  # applied on the leader, not confirmed
    finally:
        resume(rp)
    assert lc.set("after", "1") and rc.get("after") == b"1"


def _write_until_killed(proc: Any, tag: str, threads: int, kill_after: float) -> list[str]:
    """Writers on ``threads`` connections until ``proc`` is SIGKILLed; the keys that got OK."""
    acked: list[list[str]] = [[] for _ in range(threads)]

    def writer(i: int) -> None:
        c = client(proc, socket_timeout=10)
        n = 0
        while True:
            key = f"w:{tag}:{i}:{n}"
            n += 1
            try:
                if c.set(key, n):
                    acked[i].append(key)
            except redis.ResponseError:
                continue  # refused or unconfirmed: not acknowledged
            except (redis.ConnectionError, redis.TimeoutError):
                return

    workers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(threads)]
    for w in workers:
        w.start()
    time.sleep(kill_after)  # the moment of the crash is the random variable here
    proc.kill()
    for w in workers:
        w.join(30)
        assert not w.is_alive()
    return [k for a in acked for k in a]


def failover(nodes: list[NodeProcess], dead: NodeProcess, epoch: int) -> NodeProcess:
    """Promote the most advanced survivor at ``epoch``, point the others at it; returns it."""
    alive = [n for n in nodes if n is not dead]
    offsets = {n.port: repl_info(client(n))["slave_repl_offset"] for n in alive}
    best = max(alive, key=lambda n: offsets[n.port])
    assert client(best).execute_command("REPLICAOF", "NO", "ONE", "EPOCH", str(epoch)) == b"OK"
    for n in alive:
        if n is not best:
            client(n).execute_command("REPLICAOF", "127.0.0.1", str(best.port), "EPOCH", str(epoch))
    return best


def test_semi_sync_loses_no_acknowledged_write_when_the_leader_is_killed(procs: Procs) -> None:
    rnd = random.Random(11)
    args = ("--durability", "semi-sync", "--semi-sync-timeout", "3000")
    leader = procs.node("n0", *args)
    nodes = [leader, procs.replica("n1", leader, *args), procs.replica("n2", leader, *args)]
    total = 0
    for epoch in range(1, 6):
        lc = client(leader)
        wait_until(lambda lc=lc: online_replicas(lc) == 2, DEADLINE, what="two online replicas")
        acked = _write_until_killed(leader, f"e{epoch}", threads=3, kill_after=rnd.uniform(0.1, 0.6))
        assert acked, "no write was acknowledged before the kill"
        dead, leader = leader, failover(nodes, leader, epoch)
        new = client(leader)
        present = new.exists(*acked) if len(acked) < 5000 else sum(new.exists(k) for k in acked)
        assert present == len(acked), f"epoch {epoch}: {len(acked) - present} of {len(acked)} acknowledged writes lost"
        total += len(acked)
        dead.args = [*args, "--replicaof", "127.0.0.1", str(leader.port)]
        dead.start()
    lc = client(leader)
    wait_link_up(*(client(n) for n in nodes if n is not leader))
    wait_converged(lc, [client(n) for n in nodes if n is not leader])
    assert total > 100


# -- 8. a real redis-server --------------------------------------------------------------------------------
#
# Our DEBUG DIGEST is Redis's algorithm, except that it also mixes in each key's expiry time
# (Redis only marks that a key has one): digests of datasets with TTLs differ between the two
# by design. So the digest is compared on a TTL-free dataset, and with TTLs the contents are
# compared key by key, PEXPIRETIME included, with DEBUG DIGEST-VALUE for keys without one.


def _every_type(c: redis.Redis, tag: str, n: int = 200, ttls: bool = True) -> None:
    p = c.pipeline(transaction=False)
    for i in range(n):
        p.set(f"{tag}:s:{i}", i)
        p.rpush(f"{tag}:l:{i % 20}", i)
        p.hset(f"{tag}:h:{i % 20}", f"f{i}", i)
        p.hincrbyfloat(f"{tag}:h:{i % 20}", "float", 0.5)
        p.sadd(f"{tag}:set:{i % 20}", i)
        p.zadd(f"{tag}:z:{i % 20}", {f"m{i}": i / 3})
        p.zincrby(f"{tag}:z:{i % 20}", 0.1, "inc")
        p.incrbyfloat(f"{tag}:f", 1.1)
        p.append(f"{tag}:s:{i // 2}", "+")
        if ttls:
            p.set(f"{tag}:ttl:{i}", i, ex=600 + i)
    p.spop(f"{tag}:set:1")
    p.spop(f"{tag}:set:2", 3)
    p.lpop(f"{tag}:l:3")
    p.hdel(f"{tag}:h:4", "f4")
    p.zpopmin(f"{tag}:z:5")
    p.rename(f"{tag}:s:6", f"{tag}:renamed")
    p.delete(f"{tag}:s:8")
    if ttls:
        p.expire(f"{tag}:l:1", 900)
        p.pexpire(f"{tag}:h:2", 800000)
        p.getex(f"{tag}:s:9", px=700000)
        p.set(f"{tag}:short", "x", px=50)  # expires during the test: the leader's DEL must follow
        p.persist(f"{tag}:ttl:0")
    p.execute()
    t = c.pipeline(transaction=True)
    t.incr(f"{tag}:n")
    t.lpush(f"{tag}:l:0", "tx")
    t.sadd(f"{tag}:set:0", "tx")
    t.execute()


def contents(c: redis.Redis) -> dict[tuple[int, bytes], tuple[Any, ...]]:
    """Every key of every database: type, value, absolute expiry, DEBUG DIGEST-VALUE if no TTL."""
    out: dict[tuple[int, bytes], tuple[Any, ...]] = {}
    for name in c.info("keyspace"):
        db = int(name[2:])
        dc = redis.Redis(host="127.0.0.1", port=c.connection_pool.connection_kwargs["port"], db=db)
        for key in dc.scan_iter(count=1000):
            kind = dc.type(key)
            value: Any = {
                b"string": dc.get,
                b"list": lambda k, dc=dc: dc.lrange(k, 0, -1),
                b"set": dc.smembers,
                b"hash": dc.hgetall,
                b"zset": lambda k, dc=dc: dc.zrange(k, 0, -1, withscores=True),
            }[kind](key)
            expire = dc.execute_command("PEXPIRETIME", key)
            value_digest = dc.execute_command("DEBUG", "DIGEST-VALUE", key) if expire < 0 else None
            out[(db, key)] = (kind, value, expire, value_digest)
        dc.close()
    return out


def wait_same_contents(leader: redis.Redis, replica: redis.Redis) -> None:
    def same() -> bool:
        offset = repl_info(leader)["master_repl_offset"]
        if repl_info(replica)["slave_repl_offset"] != offset:
            raise AssertionError("offsets differ")
        ours, theirs = contents(leader), contents(replica)
        if ours != theirs:
            only = sorted(ours.keys() ^ theirs.keys())[:5]
            changed = [(k, ours[k], theirs[k]) for k in ours.keys() & theirs.keys() if ours[k] != theirs[k]][:3]
            raise AssertionError(f"missing on one side: {only}; differing: {changed}")
        return repl_info(leader)["master_repl_offset"] == offset

    wait_until(same, DEADLINE, interval=0.2, what="the same contents on both")


def test_a_real_redis_server_replicates_from_us(procs: Procs) -> None:
    leader = procs.node("leader")
    lc = client(leader)
    _every_type(lc, "before", 500, ttls=False)
    client(leader, db=4).rpush("db4", "x")
    server = procs.redis("redis", "--replicaof", "127.0.0.1", str(leader.port), "--enable-debug-command", "yes")
    rc = server.client()
    wait_until(lambda: link_up(rc), DEADLINE, what=f"redis-server to sync: {server.log()}")
    _every_type(lc, "live", ttls=False)
    # Redis's own DEBUG DIGEST of what it loaded and applied is ours.
    wait_converged(lc, [rc])
    _every_type(lc, "ttl")
    client(leader, db=4).set("db4:ttl", "x", px=600000)
    wait_same_contents(lc, rc)
    wait_until(lambda: rc.dbsize() == lc.dbsize() and not lc.exists("ttl:short"), DEADLINE)
    # A partial resync with a real Redis replica.
    assert lc.client_kill_filter(_type="replica") == 1
    lc.set("after-kill", "1")
    wait_until(lambda: stats(lc)["sync_partial_ok"] == 1, DEADLINE, what=f"a partial resync: {server.log()}")
    assert stats(lc)["sync_full"] == 1 and stats(lc)["sync_partial_err"] == 0
    _every_type(lc, "after")
    wait_same_contents(lc, rc)
    assert rc.get("after-kill") == b"1"
    assert "Successful partial resynchronization" in server.log()


@pytest.mark.parametrize("diskless", ["yes", "no"], ids=["diskless", "disk"])
def test_we_replicate_from_a_real_redis_server(procs: Procs, diskless: str) -> None:
    server = procs.redis(
        "redis", "--enable-debug-command", "yes", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"
    )
    lc = server.client()
    _every_type(lc, "before", 500, ttls=False)
    server.client(db=4).rpush("db4", "x")
    rp = procs.replica("ours", server)
    rc = client(rp)
    wait_until(lambda: link_up(rc), DEADLINE, what=f"our node to sync from redis-server: {rp.log()}")
    _every_type(lc, "live", ttls=False)
    wait_converged(lc, [rc])
    _every_type(lc, "ttl")
    server.client(db=4).set("db4:ttl", "x", px=600000)
    wait_same_contents(lc, rc)
    wait_until(lambda: rc.dbsize() == lc.dbsize() and not lc.exists("ttl:short"), DEADLINE)
    r4 = server.client(db=4)
    r4.set("db4:before-kill", "x")  # the stream is in db 4 when the link drops
    wait_same_contents(lc, rc)
    assert lc.client_kill_filter(_type="replica") == 1
    r4.set("db4:after-kill", "1")  # no SELECT from Redis: the partial resync continues in db 4
    wait_until(lambda: stats(lc)["sync_partial_ok"] == 1, DEADLINE, what=f"a partial resync: {rp.log()}")
    assert stats(lc)["sync_full"] == 1
    wait_same_contents(lc, rc)
    assert client(rp, db=4).get("db4:after-kill") == b"1"
    _every_type(lc, "after")
    wait_same_contents(lc, rc)


# -- a link cut inside the leader's MULTI -------------------------------------------------------------------


class _ScriptedLeader:
    """A fake leader on a socket: answers the handshake, full-syncs an empty dataset, then sends
    a script of stream bytes and cuts the link; records every PSYNC it is sent."""

    def __init__(self, stream: bytes):
        from kvcluster.node.keyspace import Keyspace
        from kvcluster.node.rdb import dump_rdb_bytes

        self.stream = stream
        self.rdb = dump_rdb_bytes(Keyspace())
        self.replid = "f" * 40
        self.psyncs: list[list[bytes]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(DEADLINE)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        import hiredis

        for _ in range(2):  # the first link is cut mid-transaction; the second must resume at its MULTI
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.settimeout(DEADLINE)
            reader = hiredis.Reader()
            with conn:
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    reader.feed(data)
                    cmd = reader.gets()
                    while cmd is not False:
                        name = cmd[0].upper()
                        if name == b"PSYNC":
                            self.psyncs.append(cmd)
                            if len(self.psyncs) == 1:
                                conn.sendall(b"+FULLRESYNC %s 0\r\n" % self.replid.encode())
                                conn.sendall(b"$%d\r\n" % len(self.rdb) + self.rdb)
                                conn.sendall(self.stream)
                                time.sleep(0.5)  # let the replica apply it, then cut the link
                                conn.shutdown(socket.SHUT_RDWR)
                                break
                            conn.sendall(b"+CONTINUE %s\r\n" % self.replid.encode())
                            time.sleep(DEADLINE)  # hold the link; the test reads what was asked
                            return
                        conn.sendall(b":0\r\n" if name == b"REPLCONF" and cmd[1].lower() == b"epoch" else b"+OK\r\n")
                        cmd = reader.gets()
                    else:
                        continue
                    break

    def close(self) -> None:
        self.sock.close()


def _encode(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%b\r\n" % (len(a), a) for a in args)


def test_a_link_cut_inside_the_leaders_multi_resumes_from_the_multi(procs: Procs) -> None:
    before = _encode(b"SELECT", b"0") + _encode(b"SET", b"before", b"1")
    open_transaction = _encode(b"MULTI") + _encode(b"SET", b"inside", b"1")  # no EXEC: the link is cut
    leader = _ScriptedLeader(before + open_transaction)
    try:
        replica = procs.node("r", "--replicaof", "127.0.0.1", str(leader.port))
        rc = client(replica)
        wait_until(lambda: len(leader.psyncs) == 2, DEADLINE, what="the replica to reconnect")
        # It asks to continue right after the writes it applied, i.e. from the MULTI: the
        # transaction is resent whole instead of its tail running without MULTI.
        assert leader.psyncs[1] == [b"PSYNC", leader.replid.encode(), str(len(before) + 1).encode()]
        assert rc.get("before") == b"1"
        assert rc.get("inside") is None
    finally:
        leader.close()
