"""The sentinel's own commands (port 26379): replies shaped and named as Redis Sentinel's.

Handlers take ``(server, client, args)`` and return a reply value for
:func:`kvcluster.common.resp.encode2` / ``encode3`` or raise :class:`SentinelError`. They never do
I/O themselves: what they change in the core comes out of ``core.take_ready()``, which the shell
carries out (state persisted) before the reply is written.
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kvcluster.common.config import ConfigError
from kvcluster.common.resp import NULL_ARRAY, OK, PONG, Push, Status, Verbatim
from kvcluster.sentinel.core import MASTER, SENTINEL, SLAVE, FailoverState, Instance, SentinelError

if TYPE_CHECKING:
    from kvcluster.sentinel.server import SentinelClient, SentinelServer

REDIS_COMPAT_VERSION = "7.2.0"
Handler = Callable[["SentinelServer", "SentinelClient", list[bytes]], Any]

# name -> (handler, arity: positive exact, negative minimum, the name counted)
COMMANDS: dict[str, tuple[Handler, int]] = {}
SENTINEL_SUBCOMMANDS: dict[str, tuple[Handler, int]] = {}
# Allowed before AUTH, and in RESP2 subscribed mode.
NO_AUTH = {"auth", "hello", "quit"}
PUBSUB_CONTEXT = {"subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"}


def command(name: str, arity: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = (fn, arity)
        return fn

    return register


def subcommand(name: str, arity: int) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        SENTINEL_SUBCOMMANDS[name] = (fn, arity)
        return fn

    return register


def _s(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def _int(b: bytes, message: str = "ERR value is not an integer or out of range") -> int:
    try:
        return int(b)
    except ValueError:
        raise SentinelError(message) from None


def check_arity(name: str, arity: int, n: int) -> None:
    if (arity > 0 and n != arity) or n < -arity:
        raise SentinelError(f"ERR wrong number of arguments for '{name}' command")


# -- connection ---------------------------------------------------------------------------------


@command("ping", -1)
def ping(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise SentinelError("ERR wrong number of arguments for 'ping' command")
    if client.in_pubsub and client.resp == 2:
        return [b"pong", args[1] if len(args) > 1 else b""]
    return args[1] if len(args) > 1 else PONG


@command("auth", -2)
def auth(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise SentinelError("ERR syntax error")
    _authenticate(server, client, args[1:])
    return OK


def _authenticate(server: SentinelServer, client: SentinelClient, creds: list[bytes]) -> None:
    password = server.config["requirepass"]
    user, given = (b"default", creds[0]) if len(creds) == 1 else (creds[0], creds[1])
    if not password:
        if len(creds) == 1:
            raise SentinelError(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        if user == b"default":
            client.authenticated = True
            return
    if user != b"default" or _s(given) != password:
        raise SentinelError("WRONGPASS invalid username-password pair or user is disabled.")
    client.authenticated = True


@command("hello", -1)
def hello(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    proto = client.resp
    i = 1
    if len(args) > 1:
        try:
            proto = int(args[1])
        except ValueError:
            raise SentinelError("ERR Protocol version is not an integer or out of range") from None
        if proto not in (2, 3):
            raise SentinelError("NOPROTO unsupported protocol version")
        i = 2
    name: bytes | None = None
    while i < len(args):
        opt = args[i].lower()
        if opt == b"auth" and i + 2 < len(args):
            _authenticate(server, client, [args[i + 1], args[i + 2]])
            i += 3
        elif opt == b"setname" and i + 1 < len(args):
            name = args[i + 1]
            i += 2
        else:
            raise SentinelError(f"ERR Syntax error in HELLO option '{_s(args[i])}'")
    if not client.authenticated:
        raise SentinelError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
            "HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and "
            "select the RESP protocol version at the same time"
        )
    if name is not None:
        client.name = name
    client.set_resp(proto)
    return {
        b"server": b"redis",
        b"version": REDIS_COMPAT_VERSION.encode(),
        b"proto": proto,
        b"id": client.id,
        b"mode": b"sentinel",
        b"role": b"sentinel",
        b"modules": [],
    }


@command("quit", -1)
def quit_(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    client.close_after_reply = True
    return OK


@command("client", -2)
def client_cmd(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    sub = args[1].lower()
    if sub == b"setname" and len(args) == 3:
        if any(c < 33 or c > 126 for c in args[2]):
            raise SentinelError("ERR Client names cannot contain spaces, newlines or special characters.")
        client.name = args[2]
        return OK
    if sub == b"getname" and len(args) == 2:
        return client.name or None
    if sub == b"id" and len(args) == 2:
        return client.id
    if sub == b"setinfo" and len(args) == 4:
        return OK
    if sub == b"list" and len(args) == 2:
        return Verbatim("".join(c.info_line() + "\n" for c in server.clients.values()).encode())
    if sub == b"info" and len(args) == 2:
        return Verbatim((client.info_line() + "\n").encode())
    if sub == b"kill" and len(args) >= 3:
        return _client_kill(server, client, args)
    raise SentinelError(f"ERR unknown subcommand or wrong number of arguments for '{_s(args[1])}'. Try CLIENT HELP.")


def _client_kill(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    if len(args) == 3:
        for c in server.clients.values():
            if c.addr == _s(args[2]):
                c.close()
                return OK
        raise SentinelError("ERR No such client")
    killed = 0
    filters = {_s(args[i]).lower(): _s(args[i + 1]) for i in range(2, len(args) - 1, 2)}
    for c in list(server.clients.values()):
        if "id" in filters and str(c.id) != filters["id"]:
            continue
        if "addr" in filters and c.addr != filters["addr"]:
            continue
        if c is client and filters.get("skipme", "yes") == "yes":
            continue
        c.close()
        killed += 1
    return killed


@command("command", -1)
def command_cmd(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    if len(args) > 1 and args[1].lower() == b"docs":
        return {}
    if len(args) > 1 and args[1].lower() == b"count":
        return len(COMMANDS)
    return []


@command("role", 1)
def role(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return [b"sentinel", [m.name.encode() for m in server.core.masters.values()]]


@command("shutdown", -1)
def shutdown(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    server.request_shutdown()
    return OK


# -- pub/sub: the event channels ---------------------------------------------------------------


@command("subscribe", -2)
def subscribe(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    for ch in args[1:]:
        client.subscriptions.add(ch)
        client.push(Push([b"subscribe", ch, client.subscription_count]))
    return NO_REPLY


@command("psubscribe", -2)
def psubscribe(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    for pat in args[1:]:
        client.patterns.add(pat)
        client.push(Push([b"psubscribe", pat, client.subscription_count]))
    return NO_REPLY


@command("unsubscribe", -1)
def unsubscribe(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return _unsubscribe(client, client.subscriptions, args[1:], b"unsubscribe")


@command("punsubscribe", -1)
def punsubscribe(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return _unsubscribe(client, client.patterns, args[1:], b"punsubscribe")


def _unsubscribe(client: SentinelClient, subs: set[bytes], names: list[bytes], kind: bytes) -> Any:
    targets = names or sorted(subs)
    if not targets:
        client.push(Push([kind, None, client.subscription_count]))
    for name in targets:
        subs.discard(name)
        client.push(Push([kind, name, client.subscription_count]))
    return NO_REPLY


@command("publish", 3)
def publish(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    # Only hellos from other sentinels, as in Redis Sentinel.
    if _s(args[1]) != "__sentinel__:hello":
        raise SentinelError("ERR Only HELLO messages are accepted by Sentinel instances.")
    server.core.on_hello(_s(args[2]), server.now())
    return 1


class _NoReply(bytes):
    """The reply was pushed already (SUBSCRIBE): encode nothing."""


NO_REPLY = _NoReply()


# -- INFO -----------------------------------------------------------------------------------


@command("info", -1)
def info(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    wanted = {_s(a).lower() for a in args[1:]} or {"default"}
    all_sections = {"server", "clients", "stats", "sentinel"}
    if wanted & {"all", "everything", "default"}:
        wanted = all_sections
    out = []
    for name in ("server", "clients", "stats", "sentinel"):
        if name in wanted:
            out.append(_info_section(server, name))
    return Verbatim("\r\n".join(out).encode())


def _info_section(server: SentinelServer, name: str) -> str:
    core = server.core
    lines: list[str]
    if name == "server":
        lines = [
            "# Server",
            f"redis_version:{REDIS_COMPAT_VERSION}",
            "redis_mode:sentinel",
            f"kvcluster_version:{server.version}",
            f"process_id:{os.getpid()}",
            f"run_id:{core.myid}",
            f"tcp_port:{server.port}",
            f"uptime_in_seconds:{int(time.time() - server.start_time)}",
            f"uptime_in_days:{int((time.time() - server.start_time) // 86400)}",
            f"config_file:{server.config.config_file or ''}",
        ]
    elif name == "clients":
        lines = ["# Clients", f"connected_clients:{len(server.clients)}"]
    elif name == "stats":
        lines = [
            "# Stats",
            f"total_connections_received:{server.stats_connections}",
            f"total_commands_processed:{server.stats_commands}",
            f"kvcluster_failovers_started:{core.failovers_started}",
            f"kvcluster_failovers_finished:{core.failovers_finished}",
            f"kvcluster_failovers_aborted:{core.failovers_aborted}",
        ]
    else:
        tilt_since = int((core.now - core.tilt_start) / 1000) if core.tilt else -1
        lines = [
            "# Sentinel",
            f"sentinel_masters:{len(core.masters)}",
            f"sentinel_tilt:{1 if core.tilt else 0}",
            f"sentinel_tilt_since_seconds:{tilt_since}",
            f"sentinel_total_tilt:{core.tilt_count}",
            "sentinel_running_scripts:0",
            "sentinel_scripts_queue_length:0",
            "sentinel_simulate_failure_flags:0",
            f"kvcluster_current_epoch:{core.current_epoch}",
        ]
        for i, m in enumerate(core.masters.values()):
            status = "odown" if m.odown else "sdown" if m.sdown else "ok"
            host, port = core.current_master_addr(m)
            lines.append(
                f"master{i}:name={m.name},status={status},address={host}:{port},"
                f"slaves={len(m.slaves)},sentinels={len(m.sentinels) + 1}"
            )
        for i, m in enumerate(core.masters.values()):
            # Ours: can this group fail over right now? (the same test as SENTINEL CKQUORUM)
            usable, quorum_ok, majority_ok = core.quorum_status(m)
            lines.append(
                f"kvcluster_master{i}:name={m.name},usable_sentinels={usable},quorum_reachable={int(quorum_ok)},"
                f"majority_reachable={int(majority_ok)},config_epoch={m.config_epoch},"
                f"failover_state={m.failover_state.text}"
            )
    return "\r\n".join(lines) + "\r\n"


# -- SENTINEL ---------------------------------------------------------------------------------


@command("sentinel", -2)
def sentinel(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    sub = _s(args[1]).lower()
    entry = SENTINEL_SUBCOMMANDS.get(sub)
    if entry is None:
        raise SentinelError(f"ERR unknown subcommand '{_s(args[1])}'. Try SENTINEL HELP.")
    handler, arity = entry
    check_arity(f"sentinel|{sub}", arity, len(args) - 1)
    return handler(server, client, args)


def instance_reply(server: SentinelServer, ri: Instance) -> dict[bytes, bytes]:
    """addReplySentinelRedisInstance: Redis's field names and order, all values bulk strings."""
    core = server.core
    now = core.now
    link = core.links.get(ri.addr)
    connected = link is not None and link.connected
    m = ri if ri.kind == MASTER else ri.master
    assert m is not None
    host, port = core.announced_host(ri.host), ri.port
    flags = ri.flags(disconnected=not connected)
    runid = ri.runid
    if ri.kind == MASTER:
        # Once the promoted replica took over, clients are sent there (as get-master-addr-by-name does).
        promoted = m.promoted_slave
        if promoted is not None and m.failover_state >= FailoverState.RECONF_SLAVES:
            host, port = core.current_master_addr(m)
            plink = core.links.get(promoted.addr)
            connected = plink is not None and plink.connected
            link = plink
            runid = promoted.runid
            flags = "master" + ("" if connected else ",disconnected") + ",failover_in_progress"
    name = ri.name if ri.kind != SLAVE else f"{host}:{port}"
    f: dict[str, Any] = {
        "name": name,
        "ip": host,
        "port": port,
        "runid": runid,
        "flags": flags,
        "link-pending-commands": link.pending if link is not None else 0,
        "link-refcount": len(core._at(ri.addr)) or 1,
    }
    if ri.kind == MASTER and ri.in_failover:
        f["failover-state"] = ri.failover_state.text
    ping_pending = link.ping_pending_since if link is not None else 0
    f["last-ping-sent"] = int(now - ping_pending) if ping_pending else 0
    f["last-ok-ping-reply"] = int(now - link.last_avail) if link is not None else 0
    f["last-ping-reply"] = int(now - link.last_pong) if link is not None else 0
    if ri.sdown and "s_down" in flags:
        f["s-down-time"] = int(now - ri.s_down_since)
    if ri.odown and "o_down" in flags:
        f["o-down-time"] = int(now - ri.o_down_since)
    f["down-after-milliseconds"] = m.down_after
    if ri.kind in (MASTER, SLAVE):
        f["info-refresh"] = int(now - ri.info_refresh) if ri.info_refresh else int(now - ri.created)
        f["role-reported"] = ri.role_reported
        f["role-reported-time"] = int(now - ri.role_reported_time)
    if ri.kind == MASTER:
        f["config-epoch"] = ri.config_epoch
        f["num-slaves"] = len(ri.slaves)
        f["num-other-sentinels"] = len(ri.sentinels)
        f["quorum"] = ri.quorum
        f["failover-timeout"] = ri.failover_timeout
        f["parallel-syncs"] = ri.parallel_syncs
        if ri.auth_user:
            f["auth-user"] = ri.auth_user
    if ri.kind == SLAVE:
        f["master-link-down-time"] = ri.master_link_down_time
        f["master-link-status"] = "ok" if ri.slave_master_link_up else "err"
        f["master-host"] = ri.slave_master_host or "?"
        f["master-port"] = ri.slave_master_port
        f["slave-priority"] = ri.slave_priority
        f["slave-repl-offset"] = ri.slave_repl_offset
        f["replica-announced"] = 1 if ri.replica_announced else 0
    if ri.kind == SENTINEL:
        f["last-hello-message"] = int(now - ri.last_hello_time) if ri.last_hello_time else int(now - ri.created)
        f["voted-leader"] = ri.leader or "?"
        f["voted-leader-epoch"] = ri.leader_epoch
    if ri.kind != SENTINEL:
        # Ours: the node's fencing epoch as last reported, and whether it is fenced.
        f["kvcluster-epoch"] = ri.node_epoch if ri.node_epoch is not None else -1
        f["kvcluster-fenced"] = 1 if ri.fenced else 0
    return {k.encode(): str(v).encode() for k, v in f.items()}


def _master(server: SentinelServer, args: list[bytes], i: int = 2) -> Instance:
    return server.core.get_master(_s(args[i]))


@subcommand("masters", 1)
def sentinel_masters(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return [instance_reply(server, m) for m in server.core.masters.values()]


@subcommand("master", 2)
def sentinel_master(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return instance_reply(server, _master(server, args))


@subcommand("replicas", 2)
def sentinel_replicas(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    m = _master(server, args)
    return [instance_reply(server, s) for s in m.slaves.values() if s.replica_announced]


SENTINEL_SUBCOMMANDS["slaves"] = SENTINEL_SUBCOMMANDS["replicas"]


@subcommand("sentinels", 2)
def sentinel_sentinels(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    m = _master(server, args)
    return [instance_reply(server, s) for s in m.sentinels.values()]


@subcommand("get-master-addr-by-name", 2)
def sentinel_get_master_addr(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    m = server.core.masters.get(_s(args[2]))
    if m is None:
        return NULL_ARRAY
    host, port = server.core.current_master_addr(m)
    return [host.encode(), str(port).encode()]


@subcommand("is-master-down-by-addr", 5)
def sentinel_is_master_down(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    port = _int(args[3])
    epoch = _int(args[4])
    return server.core.is_master_down_by_addr(_s(args[2]), port, epoch, _s(args[5]), server.now())


@subcommand("failover", 2)
def sentinel_failover(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    server.core.manual_failover(_s(args[2]), server.now())
    return OK


@subcommand("reset", 2)
def sentinel_reset(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return server.core.reset(_s(args[2]))


@subcommand("ckquorum", 2)
def sentinel_ckquorum(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    m = _master(server, args)
    usable, quorum_ok, majority_ok = server.core.quorum_status(m)
    if quorum_ok and majority_ok:
        return Status(f"OK {usable} usable Sentinels. Quorum and failover authorization can be reached".encode())
    message = f"NOQUORUM {usable} usable Sentinels. "
    if not quorum_ok:
        message += "Not enough available Sentinels to reach the specified quorum for this master"
    if not majority_ok:
        if not quorum_ok:
            message += ". "
        message += "Not enough available Sentinels to reach the majority and authorize a failover"
    raise SentinelError(message)


@subcommand("monitor", 5)
def sentinel_monitor(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    port = _int(args[4], "ERR Invalid port")
    quorum = _int(args[5], "ERR Invalid quorum")
    server.monitor(_s(args[2]), _s(args[3]), port, quorum)
    return OK


@subcommand("remove", 2)
def sentinel_remove(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    server.core.remove(_s(args[2]))
    return OK


@subcommand("set", -4)
def sentinel_set(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    name = _s(args[2])
    server.core.get_master(name)
    pairs = args[3:]
    if len(pairs) % 2:
        raise SentinelError(f"ERR Unknown option or number of arguments for SENTINEL SET '{_s(pairs[-1])}'")
    for i in range(0, len(pairs), 2):
        server.core.set_option(name, _s(pairs[i]), _s(pairs[i + 1]))
    return OK


@subcommand("myid", 1)
def sentinel_myid(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return server.core.myid.encode()


@subcommand("flushconfig", 1)
def sentinel_flushconfig(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    server.core._persist()
    return OK


@subcommand("pending-scripts", 1)
def sentinel_pending_scripts(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return []


# SENTINEL CONFIG GET/SET: the global sentinel options, by Redis's names.
_CONFIG_OPTIONS = (
    "resolve-hostnames",
    "announce-hostnames",
    "announce-ip",
    "announce-port",
    "sentinel-user",
    "sentinel-pass",
    "loglevel",
)


@subcommand("config", -3)
def sentinel_config(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    action = args[2].lower()
    config = server.config
    if action == b"get" and len(args) == 4:
        pattern = _s(args[3]).lower()
        out: dict[bytes, bytes] = {}
        for name in _CONFIG_OPTIONS:
            if fnmatch.fnmatchcase(name, pattern):
                s = config.setting(name)
                out[name.encode()] = s.format(config[name]).encode()
        return out
    if action == b"set" and len(args) >= 5 and len(args) % 2 == 1:
        pairs = [(_s(args[i]).lower(), _s(args[i + 1])) for i in range(3, len(args), 2)]
        for name, _ in pairs:
            if name not in _CONFIG_OPTIONS:
                raise SentinelError(f"ERR Invalid argument '{name}' to SENTINEL CONFIG SET")
        try:
            config.set_many(pairs)
        except ConfigError as e:
            raise SentinelError(f"ERR Invalid value for '{e.name}': {e.message}") from None
        server.core._persist()
        return OK
    raise SentinelError("ERR Only SENTINEL CONFIG GET <param> / SET <param> <value> are supported.")


_HELP = [
    "SENTINEL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CKQUORUM <master-name>",
    "    Check if the current Sentinel configuration is able to reach the quorum needed",
    "    to failover a master and the majority needed to authorize the failover.",
    "CONFIG SET <param> <value>",
    "    Set a global Sentinel configuration parameter.",
    "CONFIG GET <param>",
    "    Get global Sentinel configuration parameter.",
    "GET-MASTER-ADDR-BY-NAME <master-name>",
    "    Return the ip and port number of the master with that name.",
    "FAILOVER <master-name>",
    "    Manually failover a master node without asking for agreement from other",
    "    Sentinels (kvcluster: a majority must still vote for the epoch; writes are",
    "    paused until the chosen replica caught up, so no acknowledged write is lost).",
    "FLUSHCONFIG",
    "    Force Sentinel to rewrite its configuration on disk, including the current",
    "    Sentinel state.",
    "IS-MASTER-DOWN-BY-ADDR <ip> <port> <current-epoch> <runid>",
    "    Check if the master specified by ip:port is down from current Sentinel's",
    "    point of view.",
    "MASTER <master-name>",
    "    Show the state and info of the specified master.",
    "MASTERS",
    "    Show a list of monitored masters and their state.",
    "MONITOR <name> <ip> <port> <quorum>",
    "    Start monitoring a new master with the specified name, ip, port and quorum.",
    "MYID",
    "    Return the ID of the Sentinel instance.",
    "PENDING-SCRIPTS",
    "    Get pending scripts information.",
    "REMOVE <master-name>",
    "    Remove master from Sentinel's monitor list.",
    "REPLICAS <master-name>",
    "    Show a list of replicas for this master and their state.",
    "RESET <pattern>",
    "    Reset masters for specific master name matching this pattern.",
    "SENTINELS <master-name>",
    "    Show a list of Sentinel instances for this master and their state.",
    "SET <master-name> <option> <value> [<option> <value> ...]",
    "    Set configuration parameters for certain masters.",
    "HELP",
    "    Print this help.",
]


@subcommand("help", 1)
def sentinel_help(server: SentinelServer, client: SentinelClient, args: list[bytes]) -> Any:
    return [Status(line.encode()) for line in _HELP]
