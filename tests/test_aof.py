"""The append-only file with real processes and real files: kill -9 under load, rewrites, torn
tails and flipped bytes, ``kvcluster check-aof``, and files moving to and from a real Redis.

The soak version of the kill loops (200 iterations, with the figures) is bench/kill9_soak.py.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import KVCLUSTER, RedisServerProcess, wait_until
from kvcluster.node import aof
from persistence_helpers import (
    DEADLINE,
    Nodes,
    Writers,
    digest,
    every_type,
    info,
    kill_at_random,
    present_prefix,
    wait_rewrite_done,
)

AOF = ("--appendonly", "yes")


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    n = Nodes(tmp_path)
    yield n
    n.close()


def aof_dir(node) -> Path:  # type: ignore[no-untyped-def]
    return node.dir / "appendonlydir"


def manifest(node) -> aof.Manifest:  # type: ignore[no-untyped-def]
    return aof.Manifest.parse((aof_dir(node) / "appendonly.aof.manifest").read_bytes())


def last_incr(node) -> Path:  # type: ignore[no-untyped-def]
    return aof_dir(node) / manifest(node).incrs[-1].name


def check_aof(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KVCLUSTER, "check-aof", *args], capture_output=True, text=True, timeout=60)


def start_fails(node) -> str:  # type: ignore[no-untyped-def]
    """Start ``node`` expecting start-up to fail; returns its log."""
    node.start(wait=False)
    assert node.proc is not None
    code = node.proc.wait(DEADLINE)
    node.stop()
    assert code != 0, "start-up should have failed"
    return node.log()


# -- restart, every fsync policy ----------------------------------------------------------------


@pytest.mark.parametrize("fsync", ["always", "everysec", "no"])
def test_restart_after_kill_keeps_every_write(nodes: Nodes, fsync: str) -> None:
    n = nodes.node("n", *AOF, "--appendfsync", fsync)
    c = n.client()
    every_type(c, "t")
    c.execute_command("SWAPDB", 0, 5)
    c.execute_command("SWAPDB", 0, 5)
    c.set("gone", "x", px=1)
    wait_until(lambda: c.exists("gone") == 0, DEADLINE, what="the key to expire")
    want = digest(c)
    assert info(c, "persistence")["aof_enabled"] == 1
    n.kill()
    n.start()
    c = n.client()
    assert digest(c) == want
    assert c.get("t:tx:a") == b"1" and c.ttl("t:ttl:3") > 500
    assert info(c, "persistence")["aof_last_write_status"] == "ok"


def test_kill9_with_appendfsync_always_loses_no_acknowledged_write(nodes: Nodes) -> None:
    rnd = random.Random(6)
    n = nodes.node("n", *AOF, "--appendfsync", "always")
    total = 0
    for loop in range(6):
        w = Writers(n.port, f"a{loop}", threads=3, pipeline=1 + loop % 3 * 10).start()
        kill_at_random(n, rnd)
        w.stop()
        n.start()
        c = n.client()
        for t, acked in enumerate(w.acked):
            present = present_prefix(c, f"a{loop}", t, acked + w.pipeline)
            assert present >= acked + 1, f"loop {loop}, thread {t}: acknowledged {acked + 1}, found {present}"
        total += w.total()
        c.close()
    assert total > 300


def test_kill9_with_everysec_loses_at_most_about_a_second(nodes: Nodes) -> None:
    rnd = random.Random(7)
    n = nodes.node("n", *AOF, "--appendfsync", "everysec")
    for loop in range(3):
        w = Writers(n.port, f"e{loop}", threads=3).start()
        kill_at_random(n, rnd, 0.5, 1.5)
        w.stop()
        n.start()
        c = n.client()
        for t, acked in enumerate(w.acked):
            present = present_prefix(c, f"e{loop}", t, acked + 1)
            missing = acked + 1 - present
            if missing > 0:  # only the OS losing its page cache could drop written data: bounded by the fsync
                window = w.ack_times[t][acked] - w.ack_times[t][present]
                assert window < 2.0, f"loop {loop}: {missing} writes of the last {window:.2f} s lost"
        c.close()


# -- rewrites -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_rewrite_under_load_loses_nothing(nodes: Nodes, preamble: str) -> None:
    n = nodes.node("n", *AOF, "--appendfsync", "always", "--aof-use-rdb-preamble", preamble)
    c = n.client()
    every_type(c, "base")
    w = Writers(n.port, "rw", threads=2).start()
    for _ in range(3):
        before = info(c, "persistence")["aof_rewrites"]
        assert c.bgrewriteaof()
        wait_rewrite_done(c, before)
        assert info(c, "persistence")["aof_last_bgrewrite_status"] == "ok"
        assert wait_until(lambda: min(w.acked) > 0, DEADLINE)
    m = manifest(n)
    assert m.base is not None and m.base.name.endswith(".rdb" if preamble == "yes" else ".aof")
    assert len(m.incrs) == 1
    # Old bases and increments go (deleted in the background); only the manifest's files remain.
    wanted = sorted([m.base.name, m.incrs[0].name, "appendonly.aof.manifest"])
    wait_until(lambda: sorted(p.name for p in aof_dir(n).iterdir()) == wanted, DEADLINE, what="old files deleted")
    n.kill()
    w.stop()
    n.start()
    c = n.client()
    for t, acked in enumerate(w.acked):
        assert present_prefix(c, "rw", t, acked + 1) >= acked + 1
    assert c.get("base:tx:a") == b"1" and c.zscore("base:z:1", "m1") == pytest.approx(1 / 3)


def test_automatic_rewrite_on_growth(nodes: Nodes) -> None:
    n = nodes.node("n", *AOF, "--auto-aof-rewrite-min-size", "100kb", "--auto-aof-rewrite-percentage", "50")
    c = n.client()
    value = "x" * 1000
    for i in range(300):
        c.set(f"k{i % 20}", value)
    wait_until(lambda: info(c, "persistence")["aof_rewrites"] >= 1, DEADLINE, what="an automatic rewrite")
    wait_rewrite_done(c, 0)
    assert info(c, "persistence")["aof_current_size"] < 100 * 1024
    n.kill()
    n.start()
    assert n.client().dbsize() == 20


def test_enabling_the_aof_at_run_time(nodes: Nodes) -> None:
    n = nodes.node("n")
    c = n.client()
    every_type(c, "before")
    assert c.config_set("appendonly", "yes")
    wait_until(lambda: info(c, "persistence")["aof_rewrites"] >= 1, DEADLINE, what="the first rewrite")
    c.set("after", "1")
    want = digest(c)
    n.kill()
    n.args = [*n.args, *AOF]
    n.start()
    c = n.client()
    assert digest(c) == want
    assert c.config_set("appendonly", "no")
    assert info(c, "persistence")["aof_enabled"] == 0


# -- damage: torn tails and flipped bytes --------------------------------------------------------------


def _stopped_node_with_data(nodes: Nodes, name: str, *args: str):  # type: ignore[no-untyped-def]
    n = nodes.node(name, *AOF, *args)
    c = n.client()
    for i in range(20):
        c.set(f"k{i}", f"v{i}")  # one batch each: damage can be put in the middle
    want = digest(c)
    n.stop()
    return n, want


def test_torn_tail_is_truncated_with_a_warning(nodes: Nodes) -> None:
    n, want = _stopped_node_with_data(nodes, "n")
    path = last_incr(n)
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"*3\r\n$3\r\nSET\r\n$4\r\ntorn\r\n$10\r\nhal")  # a crash in the middle of a write
    n.start()
    c = n.client()
    assert digest(c) == want
    assert path.stat().st_size == good
    log = n.log()
    assert f"short read while loading the AOF file {path}" in log and f"at offset {good}" in log
    c.close()
    n.stop()
    # A torn batch (our framing) too.
    with open(path, "ab") as f:
        f.write(aof.batch_header(10**6, b"*1\r\n$4\r\nPING\r\n" * 4)[:-1] + b"\n*1\r\n$4\r\nPI")
    n.start()
    assert digest(n.client()) == want and path.stat().st_size == good


def test_torn_tail_refused_without_aof_load_truncated_then_check_aof_fixes_it(nodes: Nodes) -> None:
    n, want = _stopped_node_with_data(nodes, "n", "--aof-load-truncated", "no")
    path = last_incr(n)
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"*2\r\n$3\r\nDEL\r\n$2\r\nk")
    log = start_fails(n)
    assert f"Unexpected end of file reading the append only file {path} at offset {good}" in log
    checked = check_aof(str(aof_dir(n)))
    assert checked.returncode == 1 and f"torn tail at offset {good}" in checked.stdout, checked.stdout
    fixed = check_aof("--fix", str(aof_dir(n)))
    assert fixed.returncode == 0 and "Successfully truncated" in fixed.stdout, fixed.stdout
    assert path.stat().st_size == good
    assert check_aof(str(aof_dir(n))).returncode == 0
    n.start()
    assert digest(n.client()) == want


def _flip(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0x20]))


def test_a_flipped_byte_in_the_middle_stops_start_up(nodes: Nodes) -> None:
    n, _ = _stopped_node_with_data(nodes, "n")
    path = last_incr(n)
    data = path.read_bytes()
    target = data.index(b"v9")  # inside a value: RESP framing alone could not see it
    batch_start = data.rindex(b"#kv ", 0, target)
    _flip(path, target)
    log = start_fails(n)
    assert f"Bad file format reading the append only file {path}" in log
    assert "checksum mismatch in the batch of" in log and f"at offset {batch_start}" in log
    checked = check_aof(str(path))
    assert checked.returncode == 1 and f"corrupt at offset {batch_start}" in checked.stdout, checked.stdout
    _flip(path, target)  # flipped back: the same file loads
    n.start()
    assert n.client().get("k9") == b"v9"


def test_a_flipped_byte_in_the_base_stops_start_up(nodes: Nodes) -> None:
    n = nodes.node("n", *AOF)
    c = n.client()
    for i in range(50):
        c.set(f"key{i}", f"value{i}")
    before = info(c, "persistence")["aof_rewrites"]
    c.bgrewriteaof()
    wait_rewrite_done(c, before)
    n.stop()
    base = aof_dir(n) / manifest(n).base.name  # type: ignore[union-attr]
    _flip(base, base.read_bytes().index(b"value3"))
    log = start_fails(n)
    assert f"Bad file format reading the AOF base file {base}" in log and "checksum" in log.lower()
    assert check_aof(str(aof_dir(n))).returncode == 1


def test_missing_file_listed_in_the_manifest_stops_start_up(nodes: Nodes) -> None:
    n, _ = _stopped_node_with_data(nodes, "n")
    os.unlink(last_incr(n))
    assert "listed in the manifest doesn't exist" in start_fails(n)


# -- files moving to and from a real Redis -----------------------------------------------------------------


def test_redis_loads_our_aof_and_redis_check_aof_accepts_it(nodes: Nodes, tmp_path: Path) -> None:
    n = nodes.node("n", *AOF)
    c = n.client()
    every_type(c, "x", n=30)
    c.bgrewriteaof()
    wait_rewrite_done(c, 0)
    c.set("after-rewrite", "1")
    c.rpush("after-rewrite:l", "a", "b")
    expected = {k: _dump_value(c, k) for k in c.keys("*")}
    n.stop()
    checker = shutil.which("redis-check-aof")
    if checker is None:
        pytest.fail("redis-check-aof is not installed: `make test` installs Debian's redis-tools")
    manifest_file = aof_dir(n) / "appendonly.aof.manifest"
    out = subprocess.run([checker, str(manifest_file)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "valid" in out.stdout, out.stdout + out.stderr
    rdir = tmp_path / "redis"
    rdir.mkdir()
    shutil.copytree(aof_dir(n), rdir / "appendonlydir")
    server = RedisServerProcess(rdir, "--appendonly", "yes")
    try:
        rc = server.client()
        assert {k: _dump_value(rc, k) for k in rc.keys("*")} == expected
    finally:
        server.stop()


@pytest.mark.parametrize("preamble", ["yes", "no"])
def test_we_load_an_aof_written_by_redis(nodes: Nodes, tmp_path: Path, preamble: str) -> None:
    rdir = tmp_path / "redis"
    server = RedisServerProcess(rdir, "--appendonly", "yes", "--aof-use-rdb-preamble", preamble)
    try:
        rc = server.client()
        every_type(rc, "r", n=30)
        rc.bgrewriteaof()
        wait_until(lambda: rc.info("persistence")["aof_rewrite_in_progress"] == 0, DEADLINE)
        rc.set("tail", "1")
        expected = {k: _dump_value(rc, k) for k in rc.keys("*")}
    finally:
        server.stop()
    n = nodes.node("n", *AOF, start=False)
    shutil.copytree(rdir / "appendonlydir", n.dir / "appendonlydir")
    n.start()
    c = n.client()
    assert {k: _dump_value(c, k) for k in c.keys("*")} == expected


def _dump_value(c: redis.Redis, key: bytes) -> tuple[bytes, object, bool]:
    kind = c.type(key)
    value: object
    if kind == b"string":
        value = c.get(key)
    elif kind == b"list":
        value = c.lrange(key, 0, -1)
    elif kind == b"hash":
        value = c.hgetall(key)
    elif kind == b"set":
        value = sorted(c.smembers(key))
    else:
        value = c.zrange(key, 0, -1, withscores=True)
    return kind, value, c.pttl(key) > 0


def test_check_aof_cli(tmp_path: Path) -> None:
    path = tmp_path / "plain.aof"
    path.write_bytes(aof.encode_command([b"SET", b"a", b"1"]) + b"*2\r\n$3\r\nGET")
    out = check_aof(str(path))
    assert out.returncode == 1 and "torn tail at offset 27" in out.stdout
    assert check_aof("--fix", str(path)).returncode == 0
    assert path.read_bytes() == aof.encode_command([b"SET", b"a", b"1"])
    out = check_aof(str(tmp_path / "nothing-here"))
    assert out.returncode == 1
    out = subprocess.run([*KVCLUSTER, "check-aof", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "--fix" in out.stdout


# -- the reader, sans-I/O: every cut and every flipped byte -------------------------------------------------


def _sample_file() -> tuple[bytes, list[int]]:
    """An AOF in our framing; returns it and where each record ends."""
    parts = [aof.replid_line("ab" * 20)]
    for i in range(4):
        payload = aof.encode_command([b"SET", b"k%d" % i, b"v" * i]) + aof.encode_command([b"INCR", b"n"])
        parts.append(aof.batch_header(100 * i, payload) + payload)
    parts.append(b"#TS:1700000000\r\n")  # Redis's timestamp annotation: skipped
    ends, total = [], 0
    for part in parts:
        total += len(part)
        ends.append(total)
    return b"".join(parts), ends


def _read(data: bytes, chunk: int = 7) -> list[tuple[int, object]]:
    import io

    reader = aof.AOFReader(io.BytesIO(data), "mem", chunk_size=chunk)
    return [(kind, value) for kind, value, _, _ in reader.records()]


def test_reader_records_whatever_the_chunking() -> None:
    data, _ = _sample_file()
    want = _read(data, 1 << 20)
    assert [k for k, _ in want].count(aof.CMD) == 8 and (aof.REPLID, "ab" * 20) in want
    batch3 = aof.encode_command([b"SET", b"k3", b"vvv"]) + aof.encode_command([b"INCR", b"n"])
    assert (aof.BATCH, (300, len(batch3))) in want
    for chunk in (1, 2, 7, 64):
        assert _read(data, chunk) == want


def test_reader_plain_redis_files_and_framing_rules() -> None:
    plain = aof.encode_command([b"SET", b"a", b"1"]) + b"#TS:1\r\n" + aof.encode_command([b"DEL", b"a"])
    assert [k for k, _ in _read(plain)] == [aof.CMD, aof.NOTE, aof.CMD]
    data, _ = _sample_file()
    for bad in (data + aof.encode_command([b"DEL", b"a"]), data + b"#XY: something\r\n"):
        with pytest.raises(aof.AOFError) as e:
            _read(bad)  # ours never has a command outside a batch, nor another annotation
        assert not e.value.torn and e.value.offset == len(data)


def test_reader_reports_every_cut_as_a_torn_tail_at_the_last_good_record() -> None:
    import io

    data, ends = _sample_file()
    for cut in range(1, len(data)):
        if cut in ends:
            _read(data[:cut])  # a cut between records is a shorter, valid file
            continue
        reader = aof.AOFReader(io.BytesIO(data[:cut]), "mem", chunk_size=5)
        with pytest.raises(aof.AOFError) as e:
            list(reader.records())
        assert e.value.torn, (cut, e.value)
        assert e.value.offset == max([0, *(end for end in ends if end <= cut)]), cut


def test_reader_detects_every_flipped_byte_before_the_last_batch() -> None:
    data, ends = _sample_file()
    last_batch_start = ends[3]  # the fourth batch ends where the annotation starts
    for i in range(ends[3]):  # the replication id line and the first three batches
        flipped = bytearray(data)
        flipped[i] ^= 0x04
        with pytest.raises(aof.AOFError) as e:
            _read(bytes(flipped))
        assert not e.value.torn and e.value.offset <= last_batch_start, i


def test_manifest_round_trip_and_errors() -> None:
    m = aof.Manifest(aof.AOFInfo("a.aof.3.base.rdb", 3, "b"), [aof.AOFInfo("a.aof.4.incr.aof", 4, "i")])
    text = m.format()
    assert text == b"file a.aof.3.base.rdb seq 3 type b\nfile a.aof.4.incr.aof seq 4 type i\n"
    assert aof.Manifest.parse(text + b"# comment\nfile x.aof seq 9 type i extra 1\n").incrs[-1].seq == 9
    for bad in (b"file a seq 1\n", b"file a seq x type i\n", b"file ../a seq 1 type i\n", text + text):
        with pytest.raises(aof.ManifestError):
            aof.Manifest.parse(bad)
