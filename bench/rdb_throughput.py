"""RDB writer/reader throughput on a mixed dataset (default ~100 MB of RDB).

    .venv/bin/python bench/rdb_throughput.py [--mb 100] [--redis]

Builds a keyspace of strings, hashes, lists, sets and sorted sets (a fifth of the keys with a
TTL, a few 1 MB strings), then times: the streaming writer, the incremental reader alone
(parse only, fed 128 KiB chunks) and a full all-or-nothing load into a fresh keyspace.
With --redis it also times a real redis-server loading the same file (DEBUG RELOAD is not
used: the server is started on the file and its "Done loading" log line is awaited).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import redis
from kvcluster.common.crc64 import ACCELERATED
from kvcluster.node import rdb
from kvcluster.node.keyspace import Keyspace, ZSet


def build(target_mb: int, seed: int = 1) -> Keyspace:
    rnd = random.Random(seed)
    ks = Keyspace()
    # One "unit" is roughly 0.5 MB of RDB: 3000 strings and 40 of each collection type.
    now = ks.clock_ms()
    blob = os.urandom(1 << 16)

    def rbytes(n: int) -> bytes:
        i = rnd.randrange(len(blob) - n)
        return blob[i : i + n]

    for unit in range(target_mb * 2):
        db = ks.dbs[unit % 4]
        for i in range(3000):
            key = b"str:%d:%d" % (unit, i)
            db.set(key, rbytes(rnd.randint(10, 200)))
            if i % 5 == 0:
                db.set_expire(key, now + 3_600_000 + i)
        for i in range(40):
            db.set(b"hash:%d:%d" % (unit, i), {b"field:%d" % f: rbytes(rnd.randint(10, 60)) for f in range(20)})
            db.set(b"list:%d:%d" % (unit, i), deque(rbytes(rnd.randint(10, 60)) for _ in range(30)))
            db.set(b"set:%d:%d" % (unit, i), {b"member:%d" % m for m in range(30)})
            z = ZSet()
            for m in range(30):
                z.add(b"zmember:%d" % m, rnd.random() * 1000)
            db.set(b"zset:%d:%d" % (unit, i), z)
        if unit % 40 == 0:
            db.set(b"big:%d" % unit, os.urandom(1 << 20))
    return ks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_redis_load(path: Path) -> float | None:
    """Seconds a real redis-server takes to start on ``path``; then it SAVEs over it (its encodings)."""
    server = shutil.which("redis-server")
    if server is None:
        print("redis-server not installed: skipping the comparison")
        return None
    d = path.parent
    port = free_port()
    log = d / "redis.log"
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(d), "--dbfilename", path.name]
        + ["--save", "", "--appendonly", "no", "--logfile", str(log)],
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if log.exists() and "DB loaded from disk" in log.read_text():
                elapsed = time.perf_counter() - t0
                redis.Redis(host="127.0.0.1", port=port).save()
                return elapsed
            if proc.poll() is not None:
                print("redis-server exited:", log.read_text()[-2000:])
                return None
            time.sleep(0.01)
        return None
    finally:
        proc.terminate()
        proc.wait()


def timed(what: str, fn: Any, size: Any, repeat: int) -> Any:
    """Run ``fn`` ``repeat`` times; print the best wall-clock and CPU-time throughput."""
    best_wall = best_cpu = float("inf")
    result = None
    for _ in range(repeat):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    mb = size() / 1e6
    print(f"{what}: {mb / best_wall:.1f} MB/s wall, {mb / best_cpu:.1f} MB/s CPU (best of {repeat})")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=int, default=100, help="approximate RDB size in MB")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--redis", action="store_true", help="also time a real redis-server loading the file")
    args = ap.parse_args()
    print(f"CRC64: {'anycrc (C)' if ACCELERATED else 'pure Python'}")
    t0 = time.perf_counter()
    ks = build(args.mb)
    nkeys = sum(len(db.data) for db in ks.dbs)
    print(f"built {nkeys} keys in {time.perf_counter() - t0:.1f}s")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dump.rdb"

        def write() -> int:
            chunks = 0
            with open(path, "wb") as f:
                writer = rdb.RDBWriter(ks)  # snapshot=True: includes the point-in-time copy
                for chunk in writer:
                    f.write(chunk)
                    chunks += 1
            return chunks

        chunks = timed("write", write, lambda: path.stat().st_size, args.repeat)
        size = path.stat().st_size
        print(f"  ({size / 1e6:.1f} MB in {chunks} chunks)")
        data = path.read_bytes()

        def parse() -> int:
            reader = rdb.RDBReader()
            n = 0
            cs = 1 << 17
            for off in range(0, len(data), cs):
                n += len(reader.feed(data[off : off + cs]))
            return n + len(reader.finish())

        timed("read (parse only)", parse, lambda: size, args.repeat)
        timed("load into a fresh keyspace", lambda: rdb.load_rdb_file(Keyspace(), path).keys, lambda: size, args.repeat)

        if args.redis:
            rt = time_redis_load(path)
            if rt is not None:
                print(f"redis-server load (incl. process start): {size / 1e6 / rt:.1f} MB/s")
                # Redis re-saved the data with its compact encodings (listpack, intset, LZF...).
                data = path.read_bytes()
                size = len(data)
                print(f"  (redis-server's own dump: {size / 1e6:.1f} MB)")
                timed("read redis-server's dump (parse only)", parse, lambda: size, args.repeat)


if __name__ == "__main__":
    main()
