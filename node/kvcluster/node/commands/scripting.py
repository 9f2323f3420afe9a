"""Lua scripting, Redis 7.0 semantics: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT ....

One Lua 5.1 interpreter per node (lupa, the same language version as Redis), created on first use:

* **Sandbox.** A script sees only Redis's globals (no ``os``, ``io``, ``require``, ``loadfile``,
  ``dofile``, ``print``, ``debug``); every run gets a fresh global table whose writes fail with
  ``Attempt to modify a readonly table`` and whose unknown names fail with ``Script attempted to
  access nonexistent global variable``, as in Redis 7. ``redis``, ``string``, ``table``, ``math`` and
  ``coroutine`` are read-only too, precompiled (binary) chunks are refused, and the Python callables
  behind ``redis.*``, ``cjson`` and ``bit`` expose no attributes. ``cjson`` and ``bit`` follow
  lua-cjson and LuaBitOp, which Redis bundles (``cmsgpack`` and ``struct`` are not provided).
* **redis.call / redis.pcall** go through the same checks as clients' commands (the command table:
  arity, subcommands, ``noscript`` and ``blocking`` refused, writes refused in read-only scripts and
  by the node's write gate: ``-READONLY`` on a replica, ``-FENCED``, ``-NOREPLICAS``, ``-MISCONF``),
  then ``Node.call`` with the script's own client (its database starts at the caller's; a SELECT
  inside does not leak out). Replies are converted by :mod:`kvcluster.node.lua_resp`.
* **Atomicity and replication.** A script runs to the end inside one call on the event loop, so
  nothing interleaves. Its writes replicate and reach the AOF as their effects (never the EVAL),
  through the same path as EXEC: one write as itself, several wrapped in MULTI/EXEC, none as
  nothing. Semi-sync and WAIT see the script's writes as one: the reply waits for the stream offset
  after the last of them.
* **Not interruptible.** A script blocks the node while it runs (there is no second thread to
  answer ``-BUSY`` or take SCRIPT KILL, which therefore always answers ``-NOTBUSY``). As a
  safeguard, a script that has run ``SCRIPT_TIME_LIMIT_MS`` without writing anything is stopped with
  an error (what SCRIPT KILL would do in Redis); one that has written is left to finish, since
  stopping it would break its atomicity (Redis then only allows SHUTDOWN NOSAVE). The interpreter
  may use at most ``SCRIPT_MEMORY_LIMIT`` bytes (a script past it fails with ``not enough memory``).
"""

from __future__ import annotations

import hashlib
import logging
import weakref
from typing import TYPE_CHECKING, Any

from kvcluster.common.resp import OK, CommandError, ErrorReply, Status, encode2, encode3, string2ll
from kvcluster.node.client import Client
from kvcluster.node.commands.connection import REDIS_COMPAT_VERSION
from kvcluster.node.commands.server import human_bytes, register_info_fields
from kvcluster.node.commands.table import command, container
from kvcluster.node.lua_resp import (
    BIT_FUNCTIONS,
    CJSONError,
    ReplyParseError,
    ReplyTooDeep,
    bit_tohex,
    cjson_decode,
    cjson_encode,
    format_lua_number,
    lua_to_reply,
    parse_reply,
)
from lupa import lua51

if TYPE_CHECKING:
    from kvcluster.node.core import Node

log = logging.getLogger("kvcluster.node.scripting")
script_log = logging.getLogger("kvcluster.node.script")

# Redis's default busy-reply-threshold (lua-time-limit): past it, a script that wrote nothing is stopped.
SCRIPT_TIME_LIMIT_MS = 5000

# The interpreter's memory ceiling (Redis has none): a runaway script fails with "not enough memory"
# instead of taking the node down.
SCRIPT_MEMORY_LIMIT = 512 * 1024 * 1024

_COLLECT_ABOVE = 64 * 1024 * 1024

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
SCRIPT_KILLED = (
    f"ERR Script killed: it ran over {SCRIPT_TIME_LIMIT_MS} ms without writing (kvcluster stops such scripts "
    "itself: SCRIPT KILL cannot reach a node that is running a script)"
)
_LOG_LEVELS = {0: logging.DEBUG, 1: logging.INFO, 2: logging.INFO, 3: logging.WARNING}
_SHEBANG_FLAGS = frozenset([b"no-writes", b"allow-oom", b"allow-stale", b"no-cluster", b"allow-cross-slot-keys"])


def _version_num(version: bytes) -> int:
    major, minor, patch = (int(p) for p in version.split(b".")[:3])
    return major << 16 | minor << 8 | patch


# Runs once per interpreter with the Python callbacks; returns the functions the engine uses.
# Only locals of this chunk see the unprotected standard library.
_LUA_SETUP = r"""
local py_call, py_pcall, py_setresp, py_log, py_error_reply, py_status_reply, py_sha1hex = ...
local py_command_exists, py_may_kill, py_take_pending, version, version_num, killed_message = select(8, ...)
local py_cjson_encode, py_cjson_decode, py_bit = select(14, ...)  -- after the three constants
local getinfo, sethook, clock = debug.getinfo, debug.sethook, os.clock
local error, type, tostring, select = error, type, tostring, select
local setmetatable, rawset, rawget = setmetatable, rawset, rawget
local loadstring, setfenv, getfenv, xpcall, unpack, concat = loadstring, setfenv, getfenv, xpcall, unpack, table.concat

local function readonly_error()
  error("Attempt to modify a readonly table", 2)
end
local function readonly(t)
  return setmetatable({}, {__index = t, __newindex = readonly_error, __metatable = false})
end
local function lib_error(message)
  error({err = "ERR " .. message})
end

-- Redis's error handler: a plain error becomes {err = "ERR ..."}; the innermost line of the
-- script (or of a chunk it loaded) is recorded for the "script: <sha>, on <source>:<line>." suffix.
local setup_source = getinfo(1, "S").source
local function err_handler(err)
  local level, source, line = 2, nil, nil
  while true do
    local info = getinfo(level, "Sl")
    if not info then break end
    if info.what ~= "C" and info.what ~= "tail" and info.source ~= setup_source then
      source, line = info.source, info.currentline
      break
    end
    level = level + 1
  end
  local copy
  local pending = py_take_pending()
  if pending and tostring(err) == pending then  -- a library function's error, raised from Python
    copy = {err = pending}
  elseif pending and tostring(err) == pending:sub(2) then  -- ... one Lua-style: "ERR user_script:1: ..."
    local where = source and ((source:gsub("^@", "")) .. ":" .. tostring(line) .. ": ") or ""
    copy = {err = "ERR " .. where .. pending:sub(2)}
  elseif type(err) == "table" then
    copy = {err = rawget(err, "err")}
  else
    copy = {err = "ERR " .. tostring(err)}
  end
  copy.source, copy.line = source, line
  return copy
end

local redis = {}
-- The library's functions are Python callables (C functions to Lua): a failing
-- ``return redis.call(...)`` is then no tail call, and its line is known, as in Redis.
redis.call, redis.pcall, redis.setresp, redis.log = py_call, py_pcall, py_setresp, py_log
redis.error_reply, redis.status_reply, redis.sha1hex = py_error_reply, py_status_reply, py_sha1hex
redis.replicate_commands = function() return true end
redis.set_repl = function(...)
  if select("#", ...) ~= 1 then lib_error("redis.set_repl() requires one argument.") end
  local flags = ...
  if flags ~= 3 then
    lib_error("redis.set_repl() is not supported: kvcluster always replicates a script's effects (REPL_ALL)")
  end
end
redis.breakpoint = function() return false end
redis.debug = function() end
redis.acl_check_cmd = function(...)
  if select("#", ...) < 1 then lib_error("Please specify at least one argument for this redis lib call") end
  if not py_command_exists(...) then lib_error("Invalid command passed to redis.acl_check_cmd()") end
  return true
end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
redis.REDIS_VERSION, redis.REDIS_VERSION_NUM = version, version_num

local base = {}
for _, name in ipairs({"assert", "collectgarbage", "error", "gcinfo", "getmetatable", "ipairs", "next", "pairs",
                       "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring",
                       "type", "unpack", "_VERSION"}) do
  base[name] = _G[name]
end
-- A library function's error reaches Lua as a Python object: a script that catches it sees its
-- message as a string, as in Redis.
local pcall = pcall
-- Redis's pcall also turns an {err = ...} error into its message.
local function caught(ok, ...)
  if not ok then
    local err = ...
    if type(err) == "userdata" then
      py_take_pending()
      return false, tostring(err)
    elseif type(err) == "table" and type(rawget(err, "err")) == "string" then
      return false, rawget(err, "err")
    end
  end
  return ok, ...
end
base.pcall = function(f, ...)
  return caught(pcall(f, ...))
end
base.xpcall = function(f, handler)
  return xpcall(f, function(err)
    if type(err) == "userdata" then  -- the handler sees Redis's error table
      py_take_pending()
      err = {err = tostring(err)}
    end
    return handler(err)
  end)
end
base.string, base.table, base.math = readonly(string), readonly(table), readonly(math)
base.coroutine = readonly(coroutine)
-- String methods ("x"):upper() resolve through the same read-only view.
getmetatable("").__index = base.string
base.redis = readonly(redis)
local json_null = newproxy()
base.bit = readonly(py_bit)
base.cjson = readonly({encode = py_cjson_encode, decode = py_cjson_decode, null = json_null})
-- Chunks a script loads run in the script's own (protected) globals. Precompiled (binary) chunks are
-- refused, as Redis does: crafted bytecode can corrupt the interpreter.
local function load_text(code, name)
  if type(code) == "string" and code:byte(1) == 27 then
    return nil, "attempt to load a binary chunk"
  end
  return loadstring(code, name)
end
base.loadstring = function(code, name)
  local f, err = load_text(code, name)
  if f then setfenv(f, getfenv(2)) end
  return f, err
end
base.load = function(reader, name)
  local pieces = {}
  if type(reader) == "function" then
    while true do
      local piece = reader()
      if piece == nil or piece == "" then break end
      if type(piece) ~= "string" then return nil, "reader function must return a string" end
      pieces[#pieces + 1] = piece
    end
  end
  local f, err = load_text(concat(pieces), name or "=(load)")
  if f then setfenv(f, getfenv(2)) end
  return f, err
end
setmetatable(base, {__index = function(_, name)
  error("Script attempted to access nonexistent global variable '" .. tostring(name) .. "'", 2)
end, __newindex = readonly_error, __metatable = false})
local env_mt = {__index = base, __newindex = readonly_error, __metatable = false}

local function compile(body)
  local f, err = load_text(body, "@user_script")
  return f or false, err or false
end

local function run(f, keys, argv, limit_seconds)
  local env = setmetatable({KEYS = keys, ARGV = argv}, env_mt)
  rawset(env, "_G", env)
  setfenv(f, env)
  local started = clock()
  sethook(function()
    if clock() - started > limit_seconds and py_may_kill() then error({err = killed_message}) end
  end, "", 100000)
  local result = {xpcall(f, err_handler)}
  sethook()
  return result[1] or false, result[2]
end

local function memory_used()
  return collectgarbage("count") * 1024
end

return compile, run, rawget, memory_used, json_null
"""


class Script:
    __slots__ = ("allow_stale", "body", "function", "read_only", "shebang")

    def __init__(self, body: bytes, function: Any, shebang: bool, read_only: bool, allow_stale: bool):
        self.body = body
        self.function = function
        self.shebang = shebang
        self.read_only = read_only
        self.allow_stale = allow_stale


class ScriptEngine:
    """The node's Lua interpreter, its script cache, and the client scripts run commands as."""

    def __init__(self, node: Node):
        self.node = node
        self.runtime = lua51.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            max_memory=SCRIPT_MEMORY_LIMIT,
            # The library functions are Python callables: a script must not reach their attributes
            # (``redis.call.__self__`` would be this engine, ``__globals__`` the module).
            attribute_filter=_deny_attribute,
        )
        self._compile, self._run, self._rawget, self._memory_used, self._json_null = self.runtime.execute(
            _LUA_SETUP,
            self._redis_call_raising,
            self._redis_pcall,
            self._setresp,
            self._redis_log,
            self._error_reply,
            self._status_reply,
            self._sha1hex,
            self._command_exists,
            self._may_kill,
            self._take_pending,
            REDIS_COMPAT_VERSION,
            _version_num(REDIS_COMPAT_VERSION),
            SCRIPT_KILLED.encode(),
            self._cjson_encode,
            self._cjson_decode,
            self._bit_table(),
        )
        self.scripts: dict[bytes, Script] = {}
        # The script's client: not in CLIENT LIST, like Redis's Lua client.
        self.client = Client(node, 0, "", "")
        self.client.authenticated = True
        self.client.update_slow_path()
        # Per run: read-only (EVAL_RO / no-writes), whether it has written, the caller.
        self.read_only = False
        self.wrote = False
        self.running = False
        self.caller: Client | None = None
        self.resp = 2
        self.pending_error: bytes | None = None
        self._failed_message = ""

    # -- the cache --------------------------------------------------------------

    def load(self, body: bytes) -> tuple[bytes, Script]:
        sha = hashlib.sha1(body).hexdigest().encode()
        script = self.scripts.get(sha)
        if script is None:
            script = self._compile_script(body)
            self.scripts[sha] = script
        return sha, script

    def _compile_script(self, body: bytes) -> Script:
        code = body
        shebang = body.startswith(b"#!")
        read_only = allow_stale = False
        if shebang:
            first, newline, rest = body.partition(b"\n")
            words = first[2:].split()
            if not words or words[0] != b"lua":
                engine = words[0].decode("utf-8", "replace") if words else ""
                raise CommandError(f"ERR Could not find engine '{engine}'")
            for word in words[1:]:
                if not word.startswith(b"flags="):
                    raise CommandError(f"ERR Unknown lua shebang option: {word.decode('utf-8', 'replace')}")
                for flag in word[6:].split(b","):
                    if flag and flag not in _SHEBANG_FLAGS:
                        raise CommandError(f"ERR Unexpected flag in script shebang: {flag.decode('utf-8', 'replace')}")
                    read_only = read_only or flag == b"no-writes"
                    allow_stale = allow_stale or flag == b"allow-stale"
            code = newline + rest  # the shebang line stays a (blank) line: line numbers match the source
        function, error = self._compile(code)
        if function is False:
            message = error.decode("utf-8", "surrogateescape") if isinstance(error, bytes) else str(error)
            raise CommandError(f"ERR Error compiling script (new function): {message}")
        return Script(body, function, shebang, read_only, allow_stale)

    def flush(self) -> None:
        self.scripts.clear()
        self.runtime.execute("collectgarbage('collect')")

    def memory_used(self) -> int:
        return int(self._memory_used())

    def cache_bytes(self) -> int:
        # Like Redis's used_memory_scripts_eval: the bodies plus a per-entry overhead.
        return sum(len(s.body) + 40 + 64 for s in self.scripts.values())

    # -- running ----------------------------------------------------------------

    def run(self, caller: Client, sha: bytes, script: Script, keys: list[bytes], argv: list[bytes], ro: bool) -> Any:
        if self.running:
            raise CommandError("ERR This Redis command is not allowed from script")
        node = self.node
        read_only = ro or script.read_only
        if script.shebang:
            # Scripts that declare flags are checked up front, as Redis 7 does.
            if not read_only and node.write_refusal is not None:
                raise CommandError(node.write_refusal)
            if not script.allow_stale and node.stale_refusal is not None:
                raise CommandError(node.stale_refusal)
        client = self.client
        client.db = caller.db
        client.set_resp(2)
        self.resp = 2
        self.pending_error = None
        self.read_only = read_only
        self.wrote = False
        self.running = True
        self.caller = caller
        runtime = self.runtime
        # Inside EXEC the transaction already collects the effects; otherwise the script's own.
        own_stream = not node.in_exec
        if own_stream:
            node.begin_exec()
        try:
            outcome = self._run(
                script.function,
                runtime.table_from(keys),
                runtime.table_from(argv),
                SCRIPT_TIME_LIMIT_MS / 1000,
            )
            ok, result = outcome if isinstance(outcome, tuple) else (outcome, None)
            if ok:
                try:
                    return lua_to_reply(result, client.resp, self._rawget)
                except ReplyTooDeep:
                    raise CommandError("ERR reached lua stack limit") from None
            raise CommandError(self._error_message(sha, result))
        except lua51.LuaError as e:  # an error the handler could not turn into a reply (e.g. out of memory)
            raise CommandError(f"ERR Error running script {sha.decode()}: {_lua_text(e)}") from None
        finally:
            self.running = False
            self.caller = None
            if self.memory_used() > _COLLECT_ABOVE:  # e.g. after a script ran out of memory: free it now
                self.runtime.execute("collectgarbage('collect')")
            if own_stream:
                node.end_exec()
            if self.wrote and node.write_waiters_enabled and caller.kind == "normal":
                node.last_write_offset = node.repl.offset  # semi-sync: the reply waits for the whole script

    def _error_message(self, sha: bytes, error: Any) -> str:
        rawget = self._rawget
        if lua51.lua_type(error) != "table":
            return f"ERR Error running script {sha.decode()}, {_lua_text(error)[:100]}"
        err = rawget(error, b"err")
        message = _lua_text(err) if isinstance(err, bytes) else "ERR unknown error"
        source = rawget(error, b"source")
        line = rawget(error, b"line")
        if isinstance(source, bytes) and isinstance(line, (int, float)):
            where = source[1:] if source.startswith(b"@") and source != b"@user_script" else source
            message += f" script: {sha.decode()}, on {_lua_text(where)}:{int(line)}."
        return message

    # -- callbacks from Lua -----------------------------------------------------

    def _error_table(self, message: str) -> Any:
        return self.runtime.table_from({b"err": message.encode("utf-8", "surrogateescape")})

    def _raise(self, message: str) -> None:
        """Raise a script error from a library function (the error handler picks the message up)."""
        self.pending_error = message.encode("utf-8", "surrogateescape")
        raise _LibraryError(message)

    def _raise_lua_style(self, message: str) -> None:
        """Raise an error Redis's C libraries raise with luaL_error: "ERR user_script:<line>: <message>"."""
        self.pending_error = b"\x00" + message.encode("utf-8", "surrogateescape")
        raise _LibraryError(message)

    def _cjson_encode(self, *args: Any) -> bytes:
        if len(args) != 1:
            self._raise_lua_style("bad argument #1 to '?' (expected 1 argument)")
        try:
            return cjson_encode(args[0], self._json_null)
        except CJSONError as e:
            self._raise_lua_style(str(e))
            raise

    def _cjson_decode(self, *args: Any) -> Any:
        if len(args) != 1 or not isinstance(args[0], (bytes, int, float)):
            self._raise_lua_style("bad argument #1 to '?' (expected 1 argument)")
        text = args[0] if isinstance(args[0], bytes) else format_lua_number(args[0])
        try:
            value = cjson_decode(text)
        except CJSONError as e:
            self._raise_lua_style(str(e))
            raise
        return self._to_lua(value)

    def _bit_table(self) -> Any:
        def wrap(name: str, fn: Any) -> Any:
            def call(*args: Any) -> Any:
                if not args or any(not isinstance(a, (int, float)) or isinstance(a, bool) for a in args):
                    self._raise_lua_style(f"bad argument #1 to '{name}' (number expected)")
                try:
                    return fn(*args)
                except TypeError:
                    self._raise_lua_style(f"wrong number of arguments to '{name}'")
                    raise

            return call

        functions = {name.encode(): wrap(name, fn) for name, fn in BIT_FUNCTIONS.items()}
        functions[b"tohex"] = wrap("tohex", bit_tohex)
        return self.runtime.table_from(functions)

    def _to_lua(self, value: Any) -> Any:
        if value is None:
            return self._json_null
        if isinstance(value, list):
            return self.runtime.table_from([self._to_lua(v) for v in value])
        if isinstance(value, dict):
            return self.runtime.table_from({k: self._to_lua(v) for k, v in value.items()})
        return value

    def _take_pending(self) -> bytes | bool:
        pending, self.pending_error = self.pending_error, None
        return pending if pending is not None else False

    def _redis_call_raising(self, *args: Any) -> Any:
        reply, failed = self._redis_call(args)
        if failed:
            self._raise(self._failed_message)
        return reply

    def _redis_pcall(self, *args: Any) -> Any:
        reply, _ = self._redis_call(args)
        return reply

    def _redis_call(self, args: tuple[Any, ...]) -> tuple[Any, bool]:
        """redis.call / redis.pcall: (reply as a Lua value, whether it is an error)."""
        self.pending_error = None
        try:
            reply = self._call(args)
            if isinstance(reply, ErrorReply):
                return self._failed(reply.message)
            resp = self.resp
            encoded = (encode3 if resp == 3 else encode2)(reply)
            value = parse_reply(encoded, resp)
            if isinstance(value, dict) and b"err" in value:  # a handler's pre-encoded error
                return self._failed(value[b"err"].decode("utf-8", "surrogateescape"))
            return self.runtime.table_from(value, recursive=True) if isinstance(value, (list, dict)) else value, False
        except ReplyParseError as e:
            log.error("script: cannot convert a reply for Lua: %s", e)
            return self._failed("ERR internal error converting a reply for the script")
        except Exception:
            log.exception("script: error in redis.call%r", args[:3])
            return self._failed("ERR internal error executing the command from the script")

    def _failed(self, message: str) -> tuple[Any, bool]:
        self._failed_message = message
        return self._error_table(message), True

    def _setresp(self, *args: Any) -> None:
        if len(args) != 1:
            self._raise("ERR redis.setresp() requires one argument.")
        if args[0] not in (2, 3) or isinstance(args[0], bool):
            self._raise("ERR RESP version must be 2 or 3.")
        self.resp = int(args[0])
        self.client.set_resp(self.resp)

    def _one_string(self, args: tuple[Any, ...]) -> bytes:
        if len(args) != 1 or not isinstance(args[0], (bytes, int, float)) or isinstance(args[0], bool):
            self._raise("ERR wrong number or type of arguments")
        value = args[0]
        return value if isinstance(value, bytes) else format_lua_number(value)

    def _error_reply(self, *args: Any) -> Any:
        text = self._one_string(args)
        if not text.startswith(b"-"):
            text = b"-" + text
        code, space, message = text[1:].partition(b" ")
        if not space:
            code, message = b"ERR", text[1:]
        return self.runtime.table_from({b"err": code + b" " + message.strip(b"\r\n")})

    def _status_reply(self, *args: Any) -> Any:
        return self.runtime.table_from({b"ok": self._one_string(args)})

    def _sha1hex(self, *args: Any) -> bytes:
        if len(args) != 1:
            self._raise("ERR wrong number of arguments")
        value = args[0]
        data = (
            value if isinstance(value, bytes) else format_lua_number(value) if isinstance(value, (int, float)) else b""
        )
        return hashlib.sha1(data).hexdigest().encode()

    def _call(self, lua_args: tuple[Any, ...]) -> Any:
        if not lua_args:
            return ErrorReply("ERR Please specify at least one argument for this redis lib call")
        args: list[bytes] = []
        for value in lua_args:
            if isinstance(value, bytes):
                args.append(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                args.append(format_lua_number(value))
            else:
                return ErrorReply("ERR Lua redis lib command arguments must be strings or integers")
        node = self.node
        cmd = node.lookup_command(args[0])
        if cmd is None:
            return ErrorReply("ERR Unknown Redis command called from script")
        n = len(args)
        if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
            return ErrorReply("ERR Wrong number of args calling Redis command from script")
        parent_flags = cmd.flags
        if cmd.subcommands and n > 1:
            sub = cmd.subcommands.get(args[1].decode("utf-8", "replace").lower())
            if sub is None:
                return ErrorReply("ERR Unknown Redis command called from script")
            cmd = sub
            if (cmd.arity > 0 and n != cmd.arity) or n < -cmd.arity:
                return ErrorReply("ERR Wrong number of args calling Redis command from script")
        flags = cmd.flags
        if "noscript" in flags or "noscript" in parent_flags or "blocking" in flags:
            return ErrorReply("ERR This Redis command is not allowed from script")
        if cmd.is_write:
            if self.read_only:
                return ErrorReply("ERR Write commands are not allowed from read-only scripts.")
            if node.write_refusal is not None:
                return ErrorReply(node.write_refusal)
        if node.stale_refusal is not None and "stale" not in flags:
            return ErrorReply(node.stale_refusal)
        dirty = node.keyspace.dirty
        reply = node.call(self.client, cmd, args)
        if node.keyspace.dirty != dirty and cmd.is_write:
            self.wrote = True
        return reply

    def _redis_log(self, *args: Any) -> None:
        if len(args) < 2:
            self._raise("ERR redis.log() requires two arguments or more.")
        level = args[0]
        if not isinstance(level, (int, float)) or isinstance(level, bool):
            self._raise("ERR First argument must be a number (log level).")
        if not 0 <= level <= 3:
            self._raise("ERR Invalid debug level.")
        parts = [
            a if isinstance(a, bytes) else format_lua_number(a) for a in args[1:] if isinstance(a, (bytes, int, float))
        ]
        script_log.log(_LOG_LEVELS.get(int(level), logging.INFO), "%s", b" ".join(parts).decode("utf-8", "replace"))

    def _command_exists(self, *args: Any) -> bool:
        return isinstance(args[0], bytes) and self.node.lookup_command(args[0]) is not None

    def _may_kill(self) -> bool:
        return not self.wrote


def _deny_attribute(obj: Any, name: Any, is_setting: bool) -> Any:
    raise AttributeError("Python attributes are not accessible from scripts")


class _LibraryError(Exception):
    """Raised by a library function called from Lua: becomes that script's error."""


def _lua_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return str(value)


_engines: weakref.WeakKeyDictionary[Any, ScriptEngine] = weakref.WeakKeyDictionary()


def engine_of(node: Node) -> ScriptEngine:
    engine = _engines.get(node)
    if engine is None:
        engine = _engines[node] = ScriptEngine(node)
    return engine


# -- commands -------------------------------------------------------------------


def _eval_keys(args: list[bytes]) -> list[int]:
    numkeys = string2ll(args[2]) if len(args) > 2 else None
    if numkeys is None or numkeys < 0 or 3 + numkeys > len(args):
        return []
    return list(range(3, 3 + numkeys))


def _split_keys(args: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    numkeys = string2ll(args[2])
    if numkeys is None:
        raise CommandError("ERR value is not an integer or out of range")
    if numkeys > len(args) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if numkeys < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return args[3 : 3 + numkeys], args[3 + numkeys :]


def _feed_monitors(client: Client, args: list[bytes]) -> None:
    # Like Redis 7, MONITOR shows the EVAL before the commands it runs (the flag skip_monitor keeps the
    # gate from showing it again after them).
    node = client.node
    if node.monitors:
        node._feed_monitors(client, args)


def _eval(client: Client, args: list[bytes], ro: bool) -> Any:
    _feed_monitors(client, args)
    keys, argv = _split_keys(args)
    engine = engine_of(client.node)
    sha, script = engine.load(args[1])
    return engine.run(client, sha, script, keys, argv, ro)


def _evalsha(client: Client, args: list[bytes], ro: bool) -> Any:
    _feed_monitors(client, args)
    keys, argv = _split_keys(args)
    engine = engine_of(client.node)
    sha = args[1].lower()
    script = engine.scripts.get(sha)
    if script is None:
        raise CommandError(NOSCRIPT)
    return engine.run(client, sha, script, keys, argv, ro)


_EVAL_FLAGS = "noscript skip_monitor may_replicate no_mandatory_keys stale"
_EVAL_RO_FLAGS = "readonly noscript skip_monitor no_mandatory_keys stale"


@command(
    "eval",
    -3,
    _EVAL_FLAGS,
    group="scripting",
    summary="Executes a server-side Lua script.",
    since="2.6.0",
    complexity="Depends on the script that is executed.",
    get_keys=_eval_keys,
)
def eval_(client: Client, args: list[bytes]) -> Any:
    return _eval(client, args, ro=False)


@command(
    "eval_ro",
    -3,
    _EVAL_RO_FLAGS,
    group="scripting",
    summary="Executes a read-only server-side Lua script.",
    since="7.0.0",
    complexity="Depends on the script that is executed.",
    get_keys=_eval_keys,
)
def eval_ro(client: Client, args: list[bytes]) -> Any:
    return _eval(client, args, ro=True)


@command(
    "evalsha",
    -3,
    _EVAL_FLAGS,
    group="scripting",
    summary="Executes a server-side Lua script by SHA1 digest.",
    since="2.6.0",
    complexity="Depends on the script that is executed.",
    get_keys=_eval_keys,
)
def evalsha(client: Client, args: list[bytes]) -> Any:
    return _evalsha(client, args, ro=False)


@command(
    "evalsha_ro",
    -3,
    _EVAL_RO_FLAGS,
    group="scripting",
    summary="Executes a read-only server-side Lua script by SHA1 digest.",
    since="7.0.0",
    complexity="Depends on the script that is executed.",
    get_keys=_eval_keys,
)
def evalsha_ro(client: Client, args: list[bytes]) -> Any:
    return _evalsha(client, args, ro=True)


container("script", -2, group="scripting", summary="A container for Lua scripts management commands.")


@command(
    "script|load",
    3,
    "noscript stale",
    group="scripting",
    summary="Loads a server-side Lua script to the script cache.",
    since="2.6.0",
    complexity="O(N) with N being the length in bytes of the script body.",
)
def script_load(client: Client, args: list[bytes]) -> Any:
    sha, _ = engine_of(client.node).load(args[2])
    return sha


@command(
    "script|exists",
    -3,
    "noscript",
    group="scripting",
    summary="Determines whether server-side Lua scripts exist in the script cache.",
    since="2.6.0",
    complexity="O(N) with N being the number of scripts to check.",
)
def script_exists(client: Client, args: list[bytes]) -> Any:
    scripts = engine_of(client.node).scripts
    return [1 if sha.lower() in scripts else 0 for sha in args[2:]]


@command(
    "script|flush",
    -2,
    "noscript",
    group="scripting",
    summary="Removes all server-side Lua scripts from the script cache.",
    since="2.6.0",
    complexity="O(N) with N being the number of scripts in cache",
)
def script_flush(client: Client, args: list[bytes]) -> Any:
    if len(args) > 3 or (len(args) == 3 and args[2].lower() not in (b"sync", b"async")):
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    engine_of(client.node).flush()  # ASYNC too: freeing the interpreter's garbage is quick
    return OK


@command(
    "script|kill",
    2,
    "noscript allow_busy",
    group="scripting",
    summary="Terminates a server-side Lua script during execution.",
    since="2.6.0",
    complexity="O(1)",
)
def script_kill(client: Client, args: list[bytes]) -> Any:
    # A script never runs while a command can be read (see the module docstring).
    raise CommandError("NOTBUSY No scripts in execution right now.")


@command(
    "script|help",
    2,
    "loading stale",
    group="scripting",
    summary="Returns helpful text about the different subcommands.",
    since="5.0.0",
    complexity="O(1)",
)
def script_help(client: Client, args: list[bytes]) -> Any:
    lines = [
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Print this help.",
    ]
    return [Status(line.encode()) for line in lines]


def _memory_fields(node: Node) -> list[tuple[str, Any]]:
    engine = _engines.get(node)
    lua_bytes = engine.memory_used() if engine is not None else 0
    cache = engine.cache_bytes() if engine is not None else 0
    count = len(engine.scripts) if engine is not None else 0
    return [
        ("used_memory_lua", lua_bytes),
        ("used_memory_vm_eval", lua_bytes),
        ("used_memory_lua_human", human_bytes(lua_bytes)),
        ("used_memory_scripts_eval", cache),
        ("number_of_cached_scripts", count),
        ("used_memory_vm_total", lua_bytes),
        ("used_memory_vm_total_human", human_bytes(lua_bytes)),
        ("used_memory_scripts", cache),
        ("used_memory_scripts_human", human_bytes(cache)),
    ]


register_info_fields("memory", _memory_fields)
