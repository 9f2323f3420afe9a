"""Snapshots and recovery with real processes and real files: SAVE/BGSAVE/LASTSAVE, save rules,
SHUTDOWN, -LOADING, corrupt snapshots, DUMP/RESTORE and files moving to and from a real Redis,
kill -9 with snapshots only, and replicas restarting from their own data (partial resync).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import KVCLUSTER, RawClient, RedisServerProcess, wait_until
from persistence_helpers import (
    DEADLINE,
    Nodes,
    Writers,
    digest,
    every_type,
    info,
    no_retry,
    present_prefix,
    wait_bgsave_done,
)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    yield n
    n.close()


def start_fails(node) -> str:  # type: ignore[no-untyped-def]
    node.start(wait=False)
    assert node.proc is not None
    code = node.proc.wait(DEADLINE)
    node.stop()
    assert code != 0, "start-up should have failed"
    return node.log()


def contents(c: redis.Redis) -> dict[tuple[int, bytes], tuple[bytes, object, int]]:
    """Every key of every database: type, value, absolute expiry (ms, -1 none), compared across servers."""
    out = {}
    port = c.connection_pool.connection_kwargs["port"]
    for db in range(16):
        with redis.Redis(host="127.0.0.1", port=port, db=db) as d:
            for key in d.scan_iter(count=1000):
                kind = d.type(key)
                value: object
                if kind == b"string":
                    value = d.get(key)
                elif kind == b"list":
                    value = d.lrange(key, 0, -1)
                elif kind == b"hash":
                    value = d.hgetall(key)
                elif kind == b"set":
                    value = sorted(d.smembers(key))
                else:
                    value = d.zrange(key, 0, -1, withscores=True)
                out[(db, key)] = (kind, value, d.pexpiretime(key))
    return out


# -- SAVE, BGSAVE, LASTSAVE, save rules, SHUTDOWN ------------------------------------------------------


def test_save_bgsave_lastsave_and_restart(nodes: Nodes) -> None:
    n = nodes.node("n")
    c = n.client()
    every_type(c, "s")
    assert c.lastsave().timestamp() <= time.time() + 1
    assert c.save() is True
    assert info(c, "persistence")["rdb_changes_since_last_save"] == 0
    c.set("after-save", "1")
    assert info(c, "persistence")["rdb_changes_since_last_save"] == 1
    with RawClient(n.port) as raw:
        assert raw.call("BGSAVE") == b"+Background saving started\r\n"
    wait_bgsave_done(c, 1)
    p = info(c, "persistence")
    assert p["rdb_last_bgsave_status"] == "ok" and p["rdb_changes_since_last_save"] == 0
    stats = info(c, "stats")
    assert stats["total_forks"] == 1 and stats["latest_fork_usec"] > 0
    want = digest(c)
    n.kill()  # no shutdown save: what is on disk is the BGSAVE
    n.start()
    c = n.client()
    assert digest(c) == want
    p = info(c, "persistence")
    assert p["rdb_last_load_keys_loaded"] == c.dbsize() + 2  # keys in db 5 count too
    with pytest.raises(redis.ResponseError, match="syntax error"):
        c.execute_command("BGSAVE", "NOW")


def test_save_rules_trigger_a_background_save(nodes: Nodes) -> None:
    n = nodes.node("n", "--save", "1 3")
    c = n.client()
    assert c.config_get("save") == {"save": "1 3"}
    c.set("a", 1)
    c.set("b", 2)
    c.set("c", 3)
    wait_until(lambda: info(c, "persistence")["rdb_saves"] >= 1, DEADLINE, what="the save rule to fire")
    assert (n.dir / "dump.rdb").exists()
    assert c.config_set("save", "")
    assert c.config_get("save") == {"save": ""}


def test_shutdown_saves_unless_nosave_and_sigterm_saves(nodes: Nodes) -> None:
    n = nodes.node("n", "--save", "3600 1")
    c = no_retry(n)
    c.set("k1", "v1")
    c.shutdown(nosave=True)  # redis-py expects the connection to close
    n.stop()
    n.start()
    c = no_retry(n)
    assert c.exists("k1") == 0  # NOSAVE: nothing was written
    c.set("k2", "v2")
    with pytest.raises(redis.ConnectionError):
        c.execute_command("SHUTDOWN")  # save points configured: saves
    n.stop()
    n.start()
    c = no_retry(n)
    assert c.get("k2") == b"v2"
    c.set("k3", "v3")
    assert n.stop() == 0  # SIGTERM saves too
    n.start()
    assert n.client().get("k3") == b"v3"


def test_shutdown_save_without_save_points_and_failing_save(nodes: Nodes) -> None:
    n = nodes.node("n")
    c = no_retry(n)
    c.set("k", "v")
    (n.dir / "dump.rdb").mkdir()  # the rename onto it fails: the save fails
    with pytest.raises(redis.ResponseError, match="Errors trying to SHUTDOWN"):
        c.shutdown(save=True)
    assert c.ping()  # still running
    with pytest.raises(redis.ResponseError):
        c.save()
    p = info(c, "persistence")
    assert p["rdb_last_bgsave_status"] == "err"
    (n.dir / "dump.rdb").rmdir()
    c.shutdown(save=True)
    n.stop()
    n.start()
    assert n.client().get("k") == b"v"


def test_failed_bgsave_refuses_writes_with_misconf(nodes: Nodes) -> None:
    n = nodes.node("n", "--save", "3600 1")
    c = n.client()
    c.set("k", "v")
    (n.dir / "dump.rdb").mkdir()
    c.execute_command("BGSAVE")
    wait_until(lambda: info(c, "persistence")["rdb_last_bgsave_status"] == "err", DEADLINE, what="the failure")
    with pytest.raises(redis.ResponseError, match="MISCONF"):
        c.set("k", "w")
    assert c.get("k") == b"v"
    c.config_set("stop-writes-on-bgsave-error", "no")
    assert c.set("k", "w")
    (n.dir / "dump.rdb").rmdir()
    c.config_set("stop-writes-on-bgsave-error", "yes")
    c.execute_command("BGSAVE")
    wait_until(lambda: info(c, "persistence")["rdb_last_bgsave_status"] == "ok", DEADLINE, what="a good save")
    assert c.set("k", "x")


# -- loading ---------------------------------------------------------------------------------------------


def test_loading_answers_loading_until_the_data_is_in(nodes: Nodes) -> None:
    n = nodes.node("n")
    c = n.client()
    p = c.pipeline(transaction=False)
    for i in range(2000):
        p.set(f"k{i}", i)
    p.execute()
    c.save()
    n.stop()
    n.args = [*n.args, "--key-load-delay", "1000"]  # 1 ms per key: about 2 s of loading
    n.start(wait=False)
    seen_loading = False
    info_loading = False

    def loaded() -> bool:
        nonlocal seen_loading, info_loading
        with RawClient(n.port) as raw:
            reply = raw.call("PING")
            if reply.startswith(b"-LOADING Redis is loading the dataset in memory"):
                seen_loading = True
                info_loading = info_loading or b"loading:1" in raw.call("INFO", "persistence")
                return False
            return reply == b"+PONG\r\n"

    wait_until(loaded, DEADLINE, what="the end of loading")
    assert seen_loading and info_loading
    assert n.client().dbsize() == 2000


def test_corrupt_or_truncated_snapshot_stops_start_up(nodes: Nodes) -> None:
    n = nodes.node("n")
    c = n.client()
    for i in range(100):
        c.set(f"key{i}", f"value{i}")
    c.save()
    n.stop()
    path = n.dir / "dump.rdb"
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[data.index(b"value42")] ^= 0x01
    path.write_bytes(bytes(flipped))
    log = start_fails(n)
    assert f"Short read or corrupt RDB file {path}" in log and "checksum" in log.lower() and "offset" in log
    path.write_bytes(data[: len(data) // 2])
    log = start_fails(n)
    assert f"Short read or corrupt RDB file {path}" in log and "offset" in log
    path.write_bytes(data)
    n.start()
    assert n.client().dbsize() == 100


# -- a real redis-server ---------------------------------------------------------------------------------


def _redis_check_rdb() -> str:
    path = shutil.which("redis-check-rdb")
    if path is None:
        pytest.fail("redis-check-rdb is not installed: `make test` installs Debian's redis-tools")
    return path


def test_redis_check_rdb_accepts_our_snapshot_and_redis_loads_it(nodes: Nodes, tmp_path: Path) -> None:
    n = nodes.node("n")
    c = n.client()
    every_type(c, "r", n=40)
    c.hset("big-hash", mapping={f"f{i}": "x" * (i % 100) for i in range(600)})
    c.rpush("big-list", *range(1000))
    c.save()
    expected = contents(c)
    out = subprocess.run([_redis_check_rdb(), str(n.dir / "dump.rdb")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "RDB looks OK" in out.stdout, out.stdout + out.stderr
    rdir = tmp_path / "redis"
    rdir.mkdir()
    shutil.copy(n.dir / "dump.rdb", rdir / "dump.rdb")
    server = RedisServerProcess(rdir)
    try:
        assert contents(server.client()) == expected
    finally:
        server.stop()


def test_snapshots_written_by_redis_load_and_import(nodes: Nodes, tmp_path: Path) -> None:
    rdir = tmp_path / "redis"
    server = RedisServerProcess(rdir)
    try:
        rc = server.client()
        every_type(rc, "r", n=40)  # small collections: listpacks, intsets, quicklists
        rc.sadd("ints", *range(50))
        rc.hset("big-hash", mapping={f"f{i}": i for i in range(600)})  # a hash table
        rc.save()
        expected = contents(rc)
    finally:
        server.stop()
    # 1. loaded at start-up from the node's dir
    n = nodes.node("n", start=False)
    shutil.copy(rdir / "dump.rdb", n.dir / "dump.rdb")
    n.start()
    assert contents(n.client()) == expected
    # 2. imported into a running node with RESTORE
    m = nodes.node("m")
    cmd = [*KVCLUSTER, "import", "--port", str(m.port), str(rdir / "dump.rdb")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"Imported {len(expected)} of {len(expected)} keys" in out.stdout
    assert contents(m.client()) == expected
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)  # again: every key exists
    assert f"{len(expected)} already existed" in out.stdout


def test_dump_restore_round_trips_with_redis(nodes: Nodes, tmp_path: Path) -> None:
    n = nodes.node("n")
    c = n.client()
    server = RedisServerProcess(tmp_path / "redis")
    try:
        rc = server.client()
        every_type(c, "ours", n=20)
        every_type(rc, "theirs", n=20)
        for src, dst in ((c, rc), (rc, c)):
            for key in src.keys("*"):
                at = max(src.pexpiretime(key), 0)
                assert dst.restore(key, at, src.dump(key), replace=True, absttl=True)
        assert {k: v for k, v in contents(c).items() if k[0] == 0} == {
            k: v for k, v in contents(rc).items() if k[0] == 0
        }
    finally:
        server.stop()
    payload = c.dump("ours:l:1")
    assert c.dump("missing") is None
    with pytest.raises(redis.ResponseError, match="BUSYKEY Target key name already exists"):
        c.restore("ours:l:1", 0, payload)
    with pytest.raises(redis.ResponseError, match="DUMP payload version or checksum are wrong"):
        c.restore("x", 0, payload[:-1] + bytes([payload[-1] ^ 1]))
    with pytest.raises(redis.ResponseError, match="Invalid TTL value"):
        c.restore("x", -1, payload)
    with pytest.raises(redis.ResponseError, match="syntax error"):
        c.execute_command("RESTORE", "x", 0, payload, "IDLETIME", 1, "FREQ", 1)
    assert c.restore("past", int(time.time() * 1000) - 1000, payload, absttl=True)
    assert c.exists("past") == 0  # already expired: not created
    at = int(time.time() * 1000) + 600_000
    assert c.restore("abs", at, payload, absttl=True) and c.pexpiretime("abs") == at
    assert c.restore("idle", 0, payload, idletime=1000) and c.object("idletime", "idle") >= 1000
    c.config_set("maxmemory-policy", "allkeys-lfu")
    assert c.restore("freq", 0, payload, frequency=77) and c.object("freq", "freq") == 77


# -- kill -9 with snapshots only -----------------------------------------------------------------------


def test_kill9_with_snapshots_only_comes_back_with_the_last_completed_snapshot(nodes: Nodes) -> None:
    rnd = random.Random(8)
    n = nodes.node("n")
    for loop in range(4):
        c = n.client()
        w = Writers(n.port, f"s{loop}", threads=1).start()
        saves = info(c, "persistence")["rdb_saves"]
        time.sleep(rnd.uniform(0.05, 0.3))
        low = w.acked[0] + 1  # acknowledged before the BGSAVE: in the snapshot
        assert c.bgsave()
        wait_bgsave_done(c, saves)
        high = w.acked[0] + 1  # acknowledged when it was seen done: may be in it
        time.sleep(rnd.uniform(0.05, 0.4))  # writes the snapshot does not have
        n.kill()
        w.stop()
        n.start()
        c = n.client()
        got = present_prefix(c, f"s{loop}", 0, w.acked[0] + 1)
        assert low <= got <= high, f"loop {loop}: {got} keys, the snapshot had {low}..{high}"
        c.close()


# -- replicas restart from their own data -------------------------------------------------------------


def _stats(c: redis.Redis) -> tuple[int, int]:
    s = info(c, "stats")
    return s["sync_full"], s["sync_partial_ok"]


def _wait_synced(leader: redis.Redis, replica: redis.Redis) -> None:
    def same() -> bool:
        r = info(replica, "replication")
        return r.get("master_link_status") == "up" and digest(replica) == digest(leader)

    wait_until(same, DEADLINE, what="the replica to catch up")


@pytest.mark.parametrize("how", ["rdb-sigterm", "aof-kill9"])
def test_a_restarted_replica_partial_resyncs_from_its_own_data(nodes: Nodes, how: str) -> None:
    leader = nodes.node("leader")
    lc = leader.client()
    args = ("--save", "3600 1") if how == "rdb-sigterm" else ("--appendonly", "yes")
    replica = nodes.node("replica", "--replicaof", "127.0.0.1", str(leader.port), *args)
    rc = replica.client()
    every_type(lc, "x")
    _wait_synced(lc, rc)
    if how == "aof-kill9":
        # After its full sync the replica's AOF is rewritten from the new data; until then a
        # restart would find only the old data (and full-sync again, correctly).
        wait_until(lambda: info(rc, "persistence")["aof_rewrites"] >= 1, DEADLINE, what="the AOF rewrite")
        wait_until(lambda: info(rc, "persistence")["aof_rewrite_in_progress"] == 0, DEADLINE, what="the rewrite")
    full, partial = _stats(lc)
    assert full == 1
    for round_ in range(2):
        lc.set(f"more:{round_}", round_)
        lc.rpush("l", round_)
        with redis.Redis(host="127.0.0.1", port=leader.port, db=5) as l5:
            l5.incr("counter")  # the stream is in db 5 when the replica goes away
        _wait_synced(lc, rc)
        if how == "rdb-sigterm":
            assert replica.stop() == 0  # SIGTERM: the final snapshot has its replication offset
        else:
            replica.kill()
        with redis.Redis(host="127.0.0.1", port=leader.port, db=5) as l5:
            l5.incr("counter")  # continued without a SELECT: the replica must know its stream's db
        lc.set(f"while-down:{round_}", "1")
        replica.start()
        rc = replica.client()
        _wait_synced(lc, rc)
        assert _stats(lc) == (full, partial + round_ + 1), f"{how}: expected a partial resync: {replica.log()}"
    with redis.Redis(host="127.0.0.1", port=replica.port, db=5) as r5:
        assert r5.get("counter") == b"4"


def test_a_restarted_leader_lets_its_replica_continue(nodes: Nodes) -> None:
    leader = nodes.node("leader", "--appendonly", "yes")
    lc = leader.client()
    replica = nodes.node("replica", "--replicaof", "127.0.0.1", str(leader.port))
    rc = replica.client()
    every_type(lc, "x")
    _wait_synced(lc, rc)
    old_id = info(lc, "replication")["master_replid"]
    assert leader.stop() == 0
    leader.start()
    lc = leader.client()
    repl = info(lc, "replication")
    # A new id, the old one kept as replid2 up to the offset the data corresponds to.
    assert repl["master_replid2"] == old_id and repl["master_replid"] != old_id
    lc.set("after-restart", "1")
    _wait_synced(lc, rc)
    assert _stats(lc) == (0, 1), replica.log()
