"""``kvcluster check-aof`` and ``kvcluster import``: offline tools for the data files.

* ``kvcluster check-aof [--fix] FILE|DIR`` checks an AOF directory (or its manifest, or one
  file: AOF commands or an RDB base) like ``redis-check-aof``: every batch checksum, every
  command's framing, a torn tail. ``--fix`` cuts a torn or damaged tail off the *last* file
  (what a crash leaves; the node itself does this at start-up with ``aof-load-truncated
  yes``); damage in an earlier file cannot be fixed by cutting and is only reported.
* ``kvcluster import [--host H] [--port P] [--replace] dump.rdb`` verifies a snapshot
  (ours, or Redis 7.x's with its compact encodings) end to end, checksum included, then
  loads it into a *running* node with pipelined ``RESTORE ... ABSTTL`` commands, so the
  keys replicate and reach the node's AOF like any write. (To start a node from a
  snapshot instead, put the file in its ``dir`` as ``dbfilename`` before starting it.)
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from kvcluster.node import aof


def check_aof_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kvcluster check-aof",
        description="Check (and with --fix, repair the tail of) an append-only file: an AOF directory, its manifest, "
        "or one AOF/RDB file. Exit status 0 when valid (or repaired), 1 otherwise.",
        allow_abbrev=False,
    )
    parser.add_argument("path", metavar="FILE|DIR")
    parser.add_argument("--fix", action="store_true", help="truncate a torn or damaged tail of the last file")
    parser.add_argument("--appendfilename", default="appendonly.aof", help="base name of the AOF files in DIR")
    ns = parser.parse_args(argv)
    try:
        what, files = aof.resolve_aof_files(ns.path, ns.appendfilename)
    except (OSError, aof.ManifestError) as e:
        print(f"kvcluster check-aof: {e}", file=sys.stderr)
        return 1
    print(f"Checking {what}: {len(files)} file(s)")
    for i, path in enumerate(files):
        last = i == len(files) - 1
        if not os.path.exists(path):
            print(f"{path}: missing (listed in the manifest)")
            return 1
        result = aof.check_file(path)
        if not result.error and result.open_multi_at < 0:
            print(f"{path}: valid ({result.size} bytes, {result.commands} commands)")
            continue
        if result.error:
            kind = "torn tail" if result.torn else "corrupt"
            print(f"{path}: {kind} at offset {result.ok_up_to} of {result.size} bytes: {result.error}")
            cut = result.ok_up_to
        else:
            print(f"{path}: a MULTI at offset {result.open_multi_at} has no EXEC (start-up reverts it)")
            cut = result.open_multi_at
        if not last:
            print("Only the last file of an AOF can be repaired by truncating it: restore this one from a backup.")
            return 1
        if not ns.fix:
            print(f"The AOF is not valid. Use --fix to truncate {path} at offset {cut}.")
            return 1 if result.error else 0
        if aof.is_rdb_file(path):
            print("The last file is an RDB snapshot: it cannot be repaired by truncating it.")
            return 1
        aof.truncate_file(path, cut)
        print(f"Successfully truncated {path} to {cut} bytes ({result.size - cut} bytes dropped)")
        return 0
    print("The AOF is valid.")
    return 0


def import_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kvcluster import",
        description="Load an RDB snapshot (from kvcluster or Redis 7.x) into a running node, with RESTORE commands. "
        "The file is verified completely (checksum included) before anything is sent.",
        allow_abbrev=False,
    )
    parser.add_argument("file", metavar="dump.rdb")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--password", default=os.environ.get("KVCLUSTER_REQUIREPASS") or None)
    parser.add_argument("--replace", action="store_true", help="overwrite keys that exist (default: keep them)")
    parser.add_argument("--db", type=int, default=None, help="import only this database")
    parser.add_argument("--pipeline", type=int, default=500, help="commands per round trip (default 500)")
    ns = parser.parse_args(argv)

    import redis
    from kvcluster.node.rdb import RDBError, RDBReader, encode_value, read_file_chunks

    def entries():  # type: ignore[no-untyped-def]
        reader = RDBReader(databases=1 << 20)
        for chunk in read_file_chunks(ns.file):
            yield from reader.feed(chunk)
        yield from reader.finish()

    try:
        total = sum(1 for _ in entries())  # a full pass first: nothing is sent from a bad file
    except (OSError, RDBError) as e:
        print(f"kvcluster import: {ns.file}: {e}", file=sys.stderr)
        return 1
    client = redis.Redis(host=ns.host, port=ns.port, password=ns.password, socket_timeout=60)
    stats = {"imported": 0, "exists": 0, "expired": 0, "errors": 0}
    started = time.monotonic()
    now_ms = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    kinds: list[bool] = []  # per queued command: is it a RESTORE (not a SELECT)?
    db = -1

    def flush() -> None:
        for is_restore, reply in zip(kinds, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception):
                if "Target key name already exists" in str(reply):
                    stats["exists"] += 1
                else:
                    stats["errors"] += 1
                    if stats["errors"] <= 5:
                        print(f"kvcluster import: error: {reply}", file=sys.stderr)
            elif is_restore:
                stats["imported"] += 1
        kinds.clear()

    try:
        for entry in entries():
            if ns.db is not None and entry.db != ns.db:
                continue
            if entry.expire_ms is not None and entry.expire_ms <= now_ms:
                stats["expired"] += 1
                continue
            if entry.db != db:
                db = entry.db
                pipe.execute_command("SELECT", db)
                kinds.append(False)
            args: list[object] = ["RESTORE", entry.key, entry.expire_ms or 0, encode_value(entry.value), "ABSTTL"]
            if ns.replace:
                args.append("REPLACE")
            if entry.idle is not None:
                args += ["IDLETIME", entry.idle]
            elif entry.freq is not None:
                args += ["FREQ", entry.freq]
            pipe.execute_command(*args)
            kinds.append(True)
            if len(kinds) >= ns.pipeline:
                flush()
        if kinds:
            flush()
    except redis.RedisError as e:
        print(f"kvcluster import: {ns.host}:{ns.port}: {e}", file=sys.stderr)
        return 1
    finally:
        client.close()
    print(
        f"Imported {stats['imported']} of {total} keys from {ns.file} into {ns.host}:{ns.port} in "
        f"{time.monotonic() - started:.1f} s ({stats['exists']} already existed, {stats['expired']} already expired, "
        f"{stats['errors']} errors)"
    )
    return 1 if stats["errors"] else 0
