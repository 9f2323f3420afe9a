"""Lua scripting (EVAL, EVALSHA, *_RO, SCRIPT ...) against real nodes, compared with a real redis-server."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import NodeProcess, RawClient, RedisServerProcess, wait_until

# The sha in error suffixes ("script: <sha>, on @user_script:1.") is the body's: identical on both
# servers, but the comparison does not depend on it.
_SHA = re.compile(rb"script: [0-9a-f]{40}")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServerProcess]:
    server = RedisServerProcess(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def r(node: NodeProcess) -> Iterator[redis.Redis]:
    c = node.client(protocol=2, single_connection_client=True)
    c.flushall()
    c.script_flush()
    yield c
    c.close()


# (script, numkeys and arguments, prepared keys): each is run on both servers after the same setup.
DIFFERENTIAL = [
    ("return 1", []),
    ("return 3.99", []),
    ("return -3.99", []),
    ("return 'hello'", []),
    ("return true", []),
    ("return false", []),
    ("return nil", []),
    ("return {1, 2, 3, nil, 4}", []),
    ("return {1, true, false, 'x', {ok='fine'}, {2, {3}}}", []),
    ("return {err='MY failure here'}", []),
    ("return {ok='STATUS'}", []),
    ("return {double=3.5}", []),
    ("return redis.status_reply('FINE')", []),
    ("return redis.error_reply('My Error')", []),
    ("return redis.error_reply('nospace')", []),
    ("return redis.error_reply('-CODE with code')", []),
    ("return redis.sha1hex('')", []),
    ("return redis.sha1hex('abc')", []),
    ("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", [2, "k1", "k2", "a1", "a2"]),
    ("return redis.call('set', KEYS[1], ARGV[1])", [1, "k", "v"]),
    ("redis.call('set', KEYS[1], 'v') return redis.call('get', KEYS[1])", [1, "k"]),
    ("return redis.call('get', 'missing')", []),
    ("return redis.call('get', 'missing') == false", []),
    ("return type(redis.call('ping'))", []),
    ("return redis.call('ping')", []),
    ("return redis.call('ping')['ok']", []),
    ("return redis.call('set', 'k', 3.5)", []),
    ("redis.call('set', 'n', 10) return redis.call('incrbyfloat', 'n', 1.5)", []),
    ("redis.call('rpush', 'l', 'a', 'b', 'c') return redis.call('lrange', 'l', 0, -1)", []),
    ("redis.call('hset', 'h', 'f', 'v') return redis.call('hgetall', 'h')", []),
    ("redis.call('zadd', 'z', 1.5, 'm') return redis.call('zrange', 'z', 0, -1, 'withscores')", []),
    ("redis.call('set', 's', 'x') return redis.call('incr', 's')", []),
    ("redis.call('set', 's', 'x') return redis.pcall('incr', 's')", []),
    ("redis.call('set', 's', 'x') local e = redis.pcall('incr', 's') return e.err", []),
    ("redis.call('set', 's', 'x') return redis.call('lpush', 's', 1)", []),
    ("return redis.call('nosuch')", []),
    ("return redis.pcall('nosuch')", []),
    ("return redis.call('get')", []),
    ("return redis.call()", []),
    ("return redis.call('set', 'k', {})", []),
    ("return redis.call('multi')", []),
    ("return redis.call('eval', 'return 1', 0)", []),
    ("return redis.call('subscribe', 'x')", []),
    ("return redis.call('blpop', 'x', 0)", []),
    ("return redis.call('client', 'list')", []),
    ("a = 5", []),
    ("return b", []),
    ("return os", []),
    ("return io", []),
    ("return loadfile", []),
    ("return dofile", []),
    ("return require", []),
    ("return print", []),
    ("redis.call = 1", []),
    ("string.x = 1", []),
    ("return 1 +", []),
    ("end", []),
    ("error('foo')", []),
    ("error({err='MY thing'})", []),
    ("return 'x' .. nil", []),
    ("local t = nil; return t.x", []),
    ("return tostring(10/2)", []),
    ("return redis.setresp(4)", []),
    ("redis.setresp(3) return redis.call('hgetall', 'nokey')", []),
    ("redis.setresp(3) redis.call('hset', 'h', 'a', '1') return redis.call('hgetall', 'h')", []),
    ("redis.setresp(3) return redis.call('get', 'nokey')", []),
    ("redis.setresp(3) local v = redis.call('get', 'nokey') return v == nil", []),
    ("redis.setresp(3) redis.call('zadd', 'z', 2, 'm') return redis.call('zscore', 'z', 'm')", []),
    ("return redis.log(redis.LOG_WARNING, 'hi')", []),
    ("return redis.log(redis.LOG_WARNING)", []),
    ("return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING}", []),
    ("return pcall(function() error('inner') end)", []),
    ("local ok, e = pcall(function() error('inner') end) return e", []),
    ("local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), tostring(e)}", []),
    ("local ok, e = pcall(redis.call, 'nosuch') return e", []),
    ("local ok, e = pcall(redis.call, 'nosuch') return {type(e), e:sub(1, 3), 'x' .. e}", []),
    ("local ok, e = pcall(redis.call, 'nosuch') return redis.error_reply(e)", []),
    ("return {xpcall(function() return redis.call('nosuch') end, function(e) return type(e) .. e end)}", []),
    ("return {pcall(function() return 1, 2 end)}", []),
    ("return {pcall(error, {err = 'X'})}", []),
    ("return string.format('%d-%s', 3, 'x')", []),
    ("return table.concat({'a', 'b'}, ',')", []),
    ("return math.floor(2.7)", []),
    ("return #KEYS", [0]),
    ("return redis.call('select', 1)", []),
    ("redis.call('select', 1) redis.call('set', 'indb1', 'x') return redis.call('dbsize')", []),
    ("local t = {} for i = 1, 100 do t[i] = i end return t", []),
    ("return tonumber('12') + 1", []),
    ("return unpack({1, 2})", []),
    ("return _G", []),
    ("return loadstring('return os')()", []),
    ("return loadstring('return redis.call(\\'ping\\')')()", []),
    ("return coroutine.wrap(function() coroutine.yield(redis.call('ping')) end)()", []),
    ("return redis.call('debug', 'sleep', 0)", []),
    ("return setmetatable({}, {__index = function() error('boom') end})", []),
]


def _reply(client: redis.Redis, *args: object) -> object:
    try:
        return client.execute_command(*args)
    except redis.ResponseError as e:
        return ("error", _SHA.sub(b"script: SHA", str(e).encode()))


def test_replies_and_errors_match_redis(r: redis.Redis, reference: RedisServerProcess) -> None:
    ref = reference.client(protocol=2)
    try:
        differences = []
        for script, params in DIFFERENTIAL:
            numkeys_and_args = params or [0]
            for c in (r, ref):
                c.flushall()
            ours = _reply(r, "EVAL", script, *numkeys_and_args)
            theirs = _reply(ref, "EVAL", script, *numkeys_and_args)
            if ours != theirs:
                differences.append((script, ours, theirs))
        assert differences == []
    finally:
        ref.close()


def test_raw_encodings_match_redis(node: NodeProcess, reference: RedisServerProcess) -> None:
    scripts = [
        "return {1, 'two', {ok='OK'}, {err='ERR bad'}, false, true}",
        "return redis.call('get', 'nokey')",
        "redis.setresp(3) return {double=1.5}",
        "return {map={a=1}}",
    ]
    for resp in (2, 3):
        with RawClient(node.port, resp=resp) as ours, RawClient(reference.port, resp=resp) as theirs:
            for script in scripts:
                assert ours.call("EVAL", script, "0") == theirs.call("EVAL", script, "0"), (resp, script)


def test_command_errors_match_redis(r: redis.Redis, reference: RedisServerProcess) -> None:
    ref = reference.client(protocol=2)
    try:
        ref.script_flush()
        cases = [
            ("EVALSHA", "0000000000000000000000000000000000000000", 0),
            ("EVALSHA", "short", 0),
            ("EVAL", "return 1", 2, "a"),
            ("EVAL", "return 1", -1),
            ("EVAL", "return 1", "x"),
            ("EVAL", "return 1"),
            ("EVAL_RO", "return redis.call('set', 'a', 'b')", 0),
            ("EVAL_RO", "return redis.call('get', 'a')", 0),
            ("SCRIPT", "KILL"),
            ("SCRIPT", "FLUSH", "foo"),
            ("SCRIPT", "FLUSH", "ASYNC"),
            ("SCRIPT", "FLUSH", "SYNC"),
            ("SCRIPT", "EXISTS"),
            ("SCRIPT", "LOAD"),
            ("SCRIPT", "LOAD", "return 1 +"),
            ("SCRIPT", "LOAD", "return 1"),
            (
                "SCRIPT",
                "EXISTS",
                "e0e1f9fabfc9d4800c877a703b823ac0578ff8db",
                "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB",
                "00",
            ),
            ("EVALSHA", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", 0),
            ("EVALSHA_RO", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB", 0),
            ("SCRIPT", "NOSUCH"),
            ("EVAL", "#!lua flags=no-writes\nreturn redis.call('set', 'a', 'b')", 0),
            ("EVAL", "#!lua\nreturn redis.call('set', 'a', 'b')", 0),
            ("EVAL", "#!lua flags=bogus\nreturn 1", 0),
        ]
        differences = []
        for case in cases:
            ours, theirs = _reply(r, *case), _reply(ref, *case)
            if ours != theirs:
                differences.append((case, ours, theirs))
        assert differences == []
    finally:
        ref.close()


def test_script_cache_and_info(r: redis.Redis) -> None:
    sha = r.script_load("return 'cached'")
    assert r.script_exists(sha, "0" * 40) == [True, False]
    assert r.evalsha(sha, 0) == b"cached"
    info = r.info("memory")
    assert info["number_of_cached_scripts"] == 1
    assert info["used_memory_scripts_eval"] > 0
    assert info["used_memory_lua"] > 0
    assert r.script_flush() is True
    assert r.script_exists(sha) == [False]
    with pytest.raises(redis.exceptions.NoScriptError):
        r.evalsha(sha, 0)
    assert r.info("memory")["number_of_cached_scripts"] == 0
    # EVAL caches its script too (Redis does: EVALSHA works after it).
    r.eval("return 'cached'", 0)
    assert r.evalsha(sha, 0) == b"cached"
    version = r.info("server")["redis_version"]
    major, minor, patch = (int(p) for p in version.split("."))
    assert r.eval("return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}", 0) == [
        version.encode(),
        major << 16 | minor << 8 | patch,
    ]


def test_command_info_entries_match_redis(r: redis.Redis, reference: RedisServerProcess) -> None:
    ref = reference.client(protocol=2)
    try:
        names = ["eval", "evalsha", "eval_ro", "evalsha_ro", "script"]
        ours = r.execute_command("COMMAND", "INFO", *names)
        theirs = ref.execute_command("COMMAND", "INFO", *names)
        for name in names:
            for field in ("arity", "flags", "first_key_pos", "last_key_pos", "step_count"):
                assert ours[name][field] == theirs[name][field], (name, field)
        for sub in ("load", "exists", "flush", "kill"):
            assert ref.execute_command("COMMAND", "INFO", f"script|{sub}") is not None
        args = ("EVAL", "return 1", "2", "k1", "k2", "arg")
        assert r.command_getkeys(*args) == ref.command_getkeys(*args) == ["k1", "k2"]
    finally:
        ref.close()


def test_register_script_and_lock(r: redis.Redis, node: NodeProcess) -> None:
    multiply = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    assert multiply(keys=["counter"], args=[5]) == 5
    r.script_flush()  # register_script reloads on NOSCRIPT
    assert multiply(keys=["counter"], args=[2]) == 7

    other = node.client(protocol=2)
    try:
        lock = r.lock("resource", timeout=10)
        assert lock.acquire(blocking=False)
        contender = other.lock("resource", timeout=10)
        assert not contender.acquire(blocking=False)
        assert lock.owned()
        assert lock.extend(5)
        assert 10_000 < r.pttl("resource") <= 15_000
        assert lock.reacquire()
        assert 5_000 < r.pttl("resource") <= 10_000
        # Another owner's token: the release and extend scripts refuse (they return 0).
        impostor = other.lock("resource", timeout=10)
        impostor.local.token = b"someone else"
        for attempt in (impostor.release, lambda: impostor.extend(1), impostor.reacquire):
            impostor.local.token = b"someone else"  # release() forgets the token even when it fails
            with pytest.raises(redis.exceptions.LockNotOwnedError):
                attempt()
        lock.release()
        assert r.get("resource") is None
        assert contender.acquire(blocking=True, blocking_timeout=5)
        assert contender.owned() and not lock.owned()
        contender.release()
        # The context manager form, and the asyncio client's register_script path.
        with r.lock("ctx", timeout=5):
            assert r.exists("ctx")
        assert not r.exists("ctx")
    finally:
        other.close()


def test_registered_script_in_a_pipeline(r: redis.Redis) -> None:
    add = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
    for transaction in (False, True):
        r.script_flush()  # the pipeline checks SCRIPT EXISTS and loads what is missing
        pipe = r.pipeline(transaction=transaction)
        add(keys=["p"], args=[1], client=pipe)
        add(keys=["p"], args=[2], client=pipe)
        pipe.get("p")
        start = 0 if not transaction else 3
        assert pipe.execute() == [start + 1, start + 3, str(start + 3).encode()]


async def test_asyncio_lock_and_script(node: NodeProcess) -> None:
    import redis.asyncio

    c = redis.asyncio.Redis(host="127.0.0.1", port=node.port, protocol=3)
    try:
        await c.script_flush()
        lock = c.lock("alock", timeout=5)
        assert await lock.acquire(blocking=False)
        assert await lock.extend(5)
        await lock.release()
        script = c.register_script("redis.setresp(3) return redis.call('hgetall', KEYS[1])")
        await c.hset("ah", mapping={"f": "v"})
        assert await script(keys=["ah"]) == {b"f": b"v"}
    finally:
        await c.aclose()


def test_script_writes_are_atomic_and_select_does_not_leak(r: redis.Redis) -> None:
    r.eval("redis.call('select', 2) redis.call('set', 'in2', 'x')", 0)
    assert r.get("in2") is None  # the caller stays in its database
    r.select(2)
    assert r.get("in2") == b"x"
    r.select(0)
    # A failing script keeps the writes it made before the error (Redis has no rollback).
    with pytest.raises(redis.ResponseError):
        r.eval("redis.call('set', 'before', '1') error('stop')", 0)
    assert r.get("before") == b"1"


def test_watch_sees_script_writes(r: redis.Redis, node: NodeProcess) -> None:
    other = node.client(protocol=2)
    try:
        pipe = r.pipeline(transaction=True)
        pipe.watch("w")
        other.eval("redis.call('set', KEYS[1], 'changed')", 1, "w")
        pipe.multi()
        pipe.set("w", "mine")
        with pytest.raises(redis.WatchError):
            pipe.execute()
        # EVAL inside MULTI runs as one of the transaction's commands.
        pipe = r.pipeline(transaction=True)
        pipe.eval("return redis.call('incr', KEYS[1])", 1, "cnt")
        pipe.incr("cnt")
        assert pipe.execute() == [1, 2]
    finally:
        other.close()


def test_bad_scripts_never_crash_the_node(r: redis.Redis) -> None:
    bad = [
        "local function f() return 1 + f() end return f()",  # stack overflow
        "return string.rep('x', 1024 * 1024)",
        "return setmetatable({}, {__index = function() error('boom') end})",
        "return coroutine.wrap(function() coroutine.yield(redis.call('ping')) end)()",
        "return loadstring('return os')()",
        "return getmetatable('').__index.rep('a', 3)",
        "getmetatable('').__index.upper = nil",
        "return redis.call('debug', 'sleep', 0)",
        "return {1, {2, {3, {4}}}}",
        "local t = {} while true do t[#t + 1] = string.rep('x', 1000000) .. #t end",  # memory ceiling
    ]
    for script in bad:
        try:
            r.eval(script, 0)
        except redis.ResponseError:
            pass
    # The sandbox: nothing of the Python process is reachable.
    for escape in ("redis.call.__self__", "redis.call.__globals__", "redis.log.__class__", "python"):
        with pytest.raises(redis.ResponseError):
            r.eval(f"return tostring({escape})", 0)
    ok, error = r.eval("local ok, e = pcall(redis.call, 'nosuch') return {tostring(ok), tostring(e)}", 0)
    assert (ok, error) == (b"false", b"ERR Unknown Redis command called from script")
    # Precompiled bytecode is refused, directly or through loadstring / load.
    bytecode = r.eval("return string.dump(function() return 1 end)", 0)
    with pytest.raises(redis.ResponseError, match="binary chunk"):
        r.eval(bytecode, 0)
    assert r.eval("return {loadstring(ARGV[1])}", 0, bytecode) == []
    assert r.eval("local f, e = loadstring(ARGV[1]) return e", 0, bytecode) == b"attempt to load a binary chunk"
    rng = random.Random(7)
    for _ in range(30):  # garbage never crashes the node
        with pytest.raises(redis.ResponseError):
            r.eval(b"\x00" + rng.randbytes(64), 0)
    with pytest.raises(redis.ResponseError, match="reached lua stack limit"):
        r.eval("local t = {} t[1] = t return t", 0)  # a table that contains itself
    assert r.ping()
    assert r.eval("return 'still here'", 0) == b"still here"
    assert r.eval("return ('x'):upper()", 0) == b"X"  # the library survived the scripts above


def test_script_that_runs_too_long_without_writing_is_stopped(r: redis.Redis) -> None:
    started = time.monotonic()
    with pytest.raises(redis.ResponseError, match="Script killed"):
        r.eval("while true do end", 0)
    assert time.monotonic() - started < 60
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        r.script_kill()


def _stream_commands(node: NodeProcess) -> list[list[bytes]]:
    """The commands of the node's AOF (appendonly yes), in order."""
    files = sorted((node.dir / "appendonlydir").glob("*.incr.aof"))
    data = b"".join(f.read_bytes() for f in files)
    return [list(m) for m in _parse_commands(data)]


def _parse_commands(data: bytes) -> Iterator[list[bytes]]:
    pos = 0
    while True:
        start = data.find(b"*", pos)
        if start < 0:
            return
        end = data.find(b"\r\n", start)
        try:
            n = int(data[start + 1 : end])
        except ValueError:
            pos = start + 1
            continue
        pos = end + 2
        args = []
        ok = True
        for _ in range(n):
            if data[pos : pos + 1] != b"$":
                ok = False
                break
            line_end = data.find(b"\r\n", pos)
            length = int(data[pos + 1 : line_end])
            args.append(data[line_end + 2 : line_end + 2 + length])
            pos = line_end + 2 + length + 2
        if ok:
            yield args


def test_writes_replicate_as_effects_and_survive_restart(tmp_path: Path) -> None:
    leader = NodeProcess(tmp_path / "leader", "--appendonly", "yes", "--appendfsync", "always").start()
    replica = None
    try:
        replica = NodeProcess(tmp_path / "replica", "--replicaof", "127.0.0.1", str(leader.port)).start()
        lc = leader.client(protocol=2)
        rc = replica.client(protocol=2)
        wait_until(lambda: lc.info("replication")["connected_slaves"] == 1, 30, what="replica connected")
        lc.eval(
            "redis.call('set', KEYS[1], ARGV[1]) redis.call('incr', KEYS[2]) redis.call('incr', KEYS[2])",
            2,
            "a",
            "n",
            "v",
        )
        lc.eval("return redis.call('get', KEYS[1])", 1, "a")  # writes nothing: replicates nothing
        lc.eval("redis.call('rpush', 'list', 'x', 'y')", 0)
        lc.eval("redis.call('set', 'rand', tostring(math.random()))", 0)
        assert lc.wait(1, 10_000) == 1
        wait_until(lambda: rc.get("n") == b"2" and rc.lrange("list", 0, -1) == [b"x", b"y"], 30, what="replica data")
        assert rc.get("a") == b"v"
        assert rc.get("rand") == lc.get("rand")
        assert rc.execute_command("DEBUG", "DIGEST") == lc.execute_command("DEBUG", "DIGEST")
        # semi-sync: the reply waits until the replica has every write of the script.
        lc.config_set("durability", "semi-sync")
        for i in range(1, 4):
            assert lc.eval("redis.call('set', 'ss', ARGV[1]) return redis.call('incr', 'sn')", 0, str(i)) == i
            assert rc.mget("ss", "sn") == [str(i).encode(), str(i).encode()]
        lc.config_set("durability", "async")
        # A replica refuses a script's write as Redis does, and still runs read-only scripts.
        with pytest.raises(redis.exceptions.ReadOnlyError, match="You can't write against a read only replica"):
            rc.eval("redis.call('set', 'x', 1)", 0)
        assert rc.eval_ro("return redis.call('get', 'a')", 0) == b"v"
        assert rc.eval("return redis.call('get', 'a')", 0) == b"v"
        commands = [c for c in _stream_commands(leader) if c[0].upper() not in (b"SELECT", b"PING", b"REPLCONF")]
        names = [c[0].upper() for c in commands]
        assert b"EVAL" not in names and b"EVALSHA" not in names
        assert names[:5] == [b"MULTI", b"SET", b"INCR", b"INCR", b"EXEC"]
        assert names[5:7] == [b"RPUSH", b"SET"]
        assert names[7:] == [b"MULTI", b"SET", b"INCR", b"EXEC"] * 3
        lc.close()
        rc.close()
        digest = leader.client().execute_command("DEBUG", "DIGEST")
        leader.stop()
        leader.start()
        lc = leader.client(protocol=2)
        wait_until(lambda: lc.get("n") == b"2", 30, what="leader reloaded")
        assert lc.execute_command("DEBUG", "DIGEST") == digest
        lc.close()
    finally:
        if replica is not None:
            replica.stop()
        leader.stop()


def test_conversions_sans_io() -> None:
    from kvcluster.node.lua_resp import format_lua_number, lua_number_to_int, parse_reply

    assert parse_reply(b"*3\r\n:1\r\n$-1\r\n+OK\r\n", 2) == [1, False, {b"ok": b"OK"}]
    assert parse_reply(b"*2\r\n_\r\n#t\r\n", 3) == [None, True]
    assert parse_reply(b"%1\r\n$1\r\na\r\n,1.5\r\n", 3) == {b"map": {b"a": {b"double": 1.5}}}
    assert parse_reply(b"~1\r\n$1\r\nm\r\n", 3) == {b"set": {b"m": True}}
    assert parse_reply(b"-ERR bad\r\n", 2) == {b"err": b"ERR bad"}
    assert parse_reply(b"*-1\r\n", 2) is False and parse_reply(b"*-1\r\n", 3) is None
    assert [lua_number_to_int(v) for v in (3.99, -3.99, float("inf"), 2**70)] == [3, -3, -(2**63), 2**63 - 1]
    assert [format_lua_number(v) for v in (10, 3.5, 1e15, 0.1)] == [b"10", b"3.5", b"1e+15", b"0.1"]
