"""Connection commands: PING, ECHO, QUIT, AUTH, HELLO, RESET and CLIENT.

Authentication knows one user, ``default``, whose password is ``requirepass``
(no password: every connection starts authenticated). The gate answers
``NOAUTH`` to unauthenticated clients for every command without ``no_auth``.

``CLIENT REPLY OFF|SKIP`` works by swapping the client's reply encoder for one
that writes nothing (:class:`_ReplySuppressor`): the connection encodes every
reply through ``client.encode``, so nothing on the hot path has to check a flag.
"""

from __future__ import annotations

import hmac
import time
from typing import Any

from kvcluster.common.resp import OK, PONG, CommandError, Raw, Status, Verbatim, encode2, encode3
from kvcluster.node.client import Client
from kvcluster.node.commands.pubsub import unsubscribe_all
from kvcluster.node.commands.table import command, container
from kvcluster.node.commands.transactions import discard_transaction

# The Redis version we report: the command set and semantics we follow.
REDIS_COMPAT_VERSION = b"7.2.0"

# Rough fixed cost of one connection (client state, protocol object, parser) for tot-mem.
_CLIENT_BASE_MEMORY = 2048


def _strict_int(arg: bytes) -> int | None:
    """Parse like Redis's string2ll: optional '-', digits, no spaces, '+', '_' or leading zeros."""
    digits = arg[1:] if arg[:1] == b"-" else arg
    if not digits.isdigit() or (len(digits) > 1 and digits[:1] == b"0") or len(digits) > 19:
        return None
    value = int(arg)
    return value if -(1 << 63) <= value < (1 << 63) else None


# -- PING, ECHO, QUIT --------------------------------------------------------------


@command(
    "ping",
    -1,
    "fast stale",  # not loading: like Redis, -LOADING while the data is loaded (probes wait for it)
    group="connection",
    summary="Returns the server's liveliness response.",
)
def ping(client: Client, args: list[bytes]) -> Any:
    if len(args) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if client.resp == 2 and client.in_pubsub:
        return [b"pong", args[1] if len(args) == 2 else b""]
    if len(args) == 2:
        return args[1]
    return PONG


@command("echo", 2, "fast stale loading", group="connection", summary="Returns the given string.")
def echo(client: Client, args: list[bytes]) -> Any:
    return args[1]


@command(
    "quit",
    -1,
    "noscript fast stale loading no_auth no_multi allow_busy",
    group="connection",
    summary="Closes the connection.",
)
def quit_(client: Client, args: list[bytes]) -> Any:
    client.close_after_reply = True
    return OK


# -- AUTH, HELLO, RESET ---------------------------------------------------------------


def _authenticate(client: Client, username: bytes, password: bytes) -> None:
    """AUTH semantics: the only user is ``default``, whose password is requirepass."""
    required = client.node.config["requirepass"]
    # compare_digest: the time taken must not tell how much of the password matched. Config values
    # hold client bytes as surrogate escapes (CONFIG SET requirepass "\xff"): back to those bytes.
    secret = required.encode("utf-8", "surrogateescape")
    if username == b"default" and (not required or hmac.compare_digest(password, secret)):
        client.authenticated = True
        client.update_slow_path()
        return
    raise CommandError("WRONGPASS invalid username-password pair or user is disabled.")


@command(
    "auth",
    -2,
    "noscript loading stale fast no_auth allow_busy",
    group="connection",
    summary="Authenticates the connection.",
)
def auth(client: Client, args: list[bytes]) -> Any:
    if len(args) > 3:
        raise CommandError("ERR syntax error")
    if len(args) == 2:
        if not client.node.config["requirepass"]:
            raise CommandError(
                "ERR AUTH <password> called without any password configured for the default user. "
                "Are you sure your configuration is correct?"
            )
        _authenticate(client, b"default", args[1])
    else:
        _authenticate(client, args[1], args[2])
    return OK


@command(
    "hello",
    -1,
    "noscript fast stale loading no_auth allow_busy",
    group="connection",
    summary="Handshakes with the server: protocol version, authentication, client name.",
)
def hello(client: Client, args: list[bytes]) -> Any:
    version = client.resp
    i = 1
    if len(args) > 1:
        parsed = _strict_int(args[1])
        if parsed is None:
            raise CommandError("ERR Protocol version is not an integer or out of range")
        if parsed not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
        version = parsed
        i = 2
    name: bytes | None = None
    while i < len(args):
        opt = args[i].upper()
        if opt == b"AUTH" and i + 2 < len(args):
            _authenticate(client, args[i + 1], args[i + 2])
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(args):
            name = _check_client_name(args[i + 1])
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{args[i].decode('utf-8', 'replace')}'")
    if not client.authenticated:
        raise CommandError(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
            "<proto> AUTH <user> <pass> option can be used to authenticate the client and select the "
            "RESP protocol version at the same time"
        )
    if name is not None:
        client.name = name
    client.set_resp(version)
    return {
        b"server": b"redis",
        b"version": REDIS_COMPAT_VERSION,
        b"proto": version,
        b"id": client.id,
        b"mode": b"standalone",
        b"role": b"replica" if client.node.keyspace.is_replica else b"master",
        b"modules": [],
    }


@command(
    "reset",
    1,
    "noscript loading stale fast no_auth no_multi allow_busy",
    group="connection",
    summary="Resets the connection.",
    since="6.2.0",
)
def reset(client: Client, args: list[bytes]) -> Any:
    """Back to a fresh connection's state (Redis's clearClientConnectionState)."""
    node = client.node
    node.monitors.discard(client)
    discard_transaction(client)
    unsubscribe_all(client)
    client.db = node.keyspace.dbs[0]
    client.name = b""
    client.no_evict = False
    client.authenticated = not node.config["requirepass"]
    client.set_resp(2)  # also ends CLIENT REPLY OFF/SKIP and recomputes the dispatch path
    return Status(b"RESET")


# -- CLIENT ------------------------------------------------------------------------------

container("client", -2, group="connection", summary="A container for client connection commands.")

_CLIENT_TYPES = {
    b"normal": "normal",
    b"slave": "replica",
    b"replica": "replica",
    b"pubsub": "pubsub",
    b"master": "master",
}


def _client_type(name: bytes) -> str:
    kind = _CLIENT_TYPES.get(name.lower())
    if kind is None:
        raise CommandError(f"ERR Unknown client type '{name.decode('utf-8', 'replace')}'")
    return kind


def _check_client_name(name: bytes) -> bytes:
    if any(c <= 32 or c > 126 for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
    return name


def client_info(client: Client, current: list[bytes] | None = None) -> str:
    """One CLIENT LIST line (Redis 7.2's fields), without the newline.

    ``current`` is the command being run when the line describes the caller. Values
    Redis takes from its own buffers are our nearest equivalents: qbuf is what the
    request parser holds, omem what the transport still has to send; there is no
    fixed read buffer (rbs/rbp 0) and no reply list (obl/oll 0).
    """
    conn = client.conn
    fd = -1
    qbuf = omem = 0
    if conn is not None:
        transport = getattr(conn, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            try:
                fd = sock.fileno()
            except (OSError, ValueError):
                fd = -1
        parser = getattr(conn, "parser", None)
        if parser is not None:
            qbuf = parser.pending()
        omem = conn.output_buffer_size()
    argv_mem = sum(len(a) for a in current) if current else 0
    multi_mem = sum(len(a) for _, queued in client.multi for a in queued) if client.multi else 0
    if current is not None:
        cmd = _full_command_name(client, current)
    else:
        cmd = client.last_command.full_name if client.last_command is not None else "NULL"
    return (
        f"id={client.id} addr={client.addr} laddr={client.laddr} fd={fd} "
        f"name={client.name.decode('utf-8', 'replace')} "
        f"age={int(time.time() - client.created)} idle={int(time.monotonic() - client.last_interaction)} "
        f"flags={client.flags_string()} db={client.db.id} sub={len(client.subscriptions)} "
        f"psub={len(client.patterns)} ssub={len(client.shard_subscriptions)} "
        f"multi={len(client.multi) if client.multi is not None else -1} "
        f"qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} multi-mem={multi_mem} rbs=0 rbp=0 obl=0 oll=0 "
        f"omem={omem} tot-mem={_CLIENT_BASE_MEMORY + qbuf + omem + argv_mem + multi_mem} "
        f"events={'rw' if omem else 'r'} cmd={cmd} user=default redir=-1 resp={client.resp} "
        f"lib-name={client.lib_name.decode('utf-8', 'replace')} lib-ver={client.lib_ver.decode('utf-8', 'replace')}"
    )


def _full_command_name(client: Client, args: list[bytes]) -> str:
    cmd = client.node.lookup_command(args[0])
    if cmd is None:
        return args[0].decode("utf-8", "replace").lower()
    if cmd.subcommands and len(args) > 1:
        return f"{cmd.name}|{args[1].decode('utf-8', 'replace').lower()}"
    return cmd.name


@command(
    "client|id",
    2,
    "noscript loading stale",
    group="connection",
    summary="Returns the unique client ID of the connection.",
)
def client_id(client: Client, args: list[bytes]) -> Any:
    return client.id


@command(
    "client|info",
    2,
    "noscript loading stale",
    group="connection",
    summary="Returns information about the connection.",
    since="6.2.0",
)
def client_info_cmd(client: Client, args: list[bytes]) -> Any:
    return Verbatim((client_info(client, args) + "\n").encode())


@command(
    "client|list",
    -2,
    "admin noscript loading stale",
    group="connection",
    summary="Lists open connections.",
    since="2.4.0",
)
def client_list(client: Client, args: list[bytes]) -> Any:
    clients = client.node.clients
    if len(args) == 4 and args[2].lower() == b"type":
        kind = _client_type(args[3])
        selected = [c for c in clients.values() if c.kind == kind]
    elif len(args) > 3 and args[2].lower() == b"id":
        selected = []
        for arg in args[3:]:
            wanted = _strict_int(arg)
            if wanted is None:
                raise CommandError("ERR Invalid client ID")
            found = clients.get(wanted)
            if found is not None:
                selected.append(found)
    elif len(args) != 2:
        raise CommandError("ERR syntax error")
    else:
        selected = list(clients.values())
    lines = [client_info(c, args if c is client else None) + "\n" for c in selected]
    return Verbatim("".join(lines).encode())


@command(
    "client|kill",
    -3,
    "admin noscript loading stale",
    group="connection",
    summary="Terminates open connections.",
    since="2.4.0",
)
def client_kill(client: Client, args: list[bytes]) -> Any:
    addr = laddr = kind = None
    wanted_id = 0
    skipme = True
    old_form = len(args) == 3
    if old_form:
        addr = args[2].decode("utf-8", "replace")
        skipme = False  # the old form may kill the caller
    else:
        # Options are read in order, so an error in an early one wins over a missing value later.
        for i in range(2, len(args), 2):
            if i + 1 >= len(args):
                raise CommandError("ERR syntax error")
            option, value = args[i].lower(), args[i + 1]
            if option == b"id":
                parsed = _strict_int(value)
                if parsed is None or parsed < 1:
                    raise CommandError("ERR client-id should be greater than 0")
                wanted_id = parsed
            elif option == b"type":
                kind = _client_type(value)
            elif option == b"addr":
                addr = value.decode("utf-8", "replace")
            elif option == b"laddr":
                laddr = value.decode("utf-8", "replace")
            elif option == b"user":
                if value != b"default":
                    raise CommandError(f"ERR No such user '{value.decode('utf-8', 'replace')}'")
            elif option == b"skipme":
                choice = value.lower()
                if choice not in (b"yes", b"no"):
                    raise CommandError("ERR syntax error")
                skipme = choice == b"yes"
            else:
                raise CommandError("ERR syntax error")
    node = client.node
    killed = 0
    for victim in list(node.clients.values()):
        if addr is not None and victim.addr != addr:
            continue
        if laddr is not None and victim.laddr != laddr:
            continue
        if kind is not None and victim.kind != kind:
            continue
        if wanted_id and victim.id != wanted_id:
            continue
        if victim is client:
            if skipme:
                continue
            # Closed once this reply is written.
            client.close_after_reply = True
        else:
            victim.close()
            # Forget it now, like Redis's freeClient: it must not show in CLIENT LIST or
            # PUBSUB NUMSUB while the event loop gets round to the closed socket.
            node.remove_client(victim)
        killed += 1
    if old_form:
        if not killed:
            raise CommandError("ERR No such client")
        return OK
    return killed


@command(
    "client|getname", 2, "noscript loading stale", group="connection", summary="Returns the name of the connection."
)
def client_getname(client: Client, args: list[bytes]) -> Any:
    return client.name or None


@command("client|setname", 3, "noscript loading stale", group="connection", summary="Sets the connection name.")
def client_setname(client: Client, args: list[bytes]) -> Any:
    client.name = _check_client_name(args[2])
    return OK


@command(
    "client|setinfo",
    4,
    "noscript loading stale",
    group="connection",
    summary="Sets information specific to the client or connection.",
    since="7.2.0",
)
def client_setinfo(client: Client, args: list[bytes]) -> Any:
    attr, value = args[2].lower(), args[3]
    if attr not in (b"lib-name", b"lib-ver"):
        raise CommandError(f"ERR Unrecognized option '{args[2].decode('utf-8', 'replace')}'")
    if any(c < 33 or c > 126 for c in value):
        raise CommandError(
            f"ERR {args[2].decode('utf-8', 'replace')} cannot contain spaces, newlines or special characters."
        )
    if attr == b"lib-name":
        client.lib_name = value
    else:
        client.lib_ver = value
    return OK


@command(
    "client|no-evict",
    3,
    "admin noscript loading stale",
    group="connection",
    summary="Sets the client eviction mode of the connection.",
    since="7.0.0",
)
def client_no_evict(client: Client, args: list[bytes]) -> Any:
    choice = args[2].lower()
    if choice not in (b"on", b"off"):
        raise CommandError("ERR syntax error")
    client.no_evict = choice == b"on"
    return OK


class _ReplySuppressor:
    """Stands in for ``client.encode`` while replies are off: encodes to nothing.

    ``remaining`` counts replies still to swallow (SKIP); None means until
    ``CLIENT REPLY ON``. Then the client's real encoder comes back.
    """

    __slots__ = ("client", "remaining")

    def __init__(self, client: Client, remaining: int | None):
        self.client = client
        self.remaining = remaining

    def __call__(self, value: Any) -> bytes:
        if self.remaining is not None:
            self.remaining -= 1
            if self.remaining <= 0:
                _restore_encoder(self.client)
        return b""


def _restore_encoder(client: Client) -> None:
    client.encode = encode3 if client.resp == 3 else encode2


@command(
    "client|reply",
    3,
    "noscript loading stale",
    group="connection",
    summary="Instructs the server whether to reply to commands.",
    since="3.2.0",
)
def client_reply(client: Client, args: list[bytes]) -> Any:
    mode = args[2].lower()
    if mode == b"on":
        _restore_encoder(client)
        return OK
    if mode == b"off":
        client.encode = _ReplySuppressor(client, None)
    elif mode == b"skip":
        # Unless replies are off already: swallow this command's reply and the next one's.
        if not isinstance(client.encode, _ReplySuppressor):
            client.encode = _ReplySuppressor(client, 2)
    else:
        raise CommandError("ERR syntax error")
    return OK  # encoded to nothing


@command(
    "client|getredir",
    2,
    "noscript loading stale",
    group="connection",
    summary="Returns the client ID to which the connection's tracking notifications are redirected.",
    since="6.0.0",
)
def client_getredir(client: Client, args: list[bytes]) -> Any:
    return -1  # client-side caching (tracking) is not supported, so never redirected


# -- CLIENT PAUSE -------------------------------------------------------------------


class _Pause:
    """Installed as ``node.pause_check`` while CLIENT PAUSE lasts: postpones commands.

    A postponed command blocks its client (later commands wait behind it) and runs when the
    pause ends, through the normal dispatch: if the node became a replica meanwhile, a write
    then gets ``-READONLY`` (the sentinel's planned failover relies on this).
    """

    def __init__(self, node: Any):
        self.node = node
        self.until = 0.0
        self.writes_only = True
        self.postponed: list[tuple[Client, list[bytes]]] = []
        self.timer: Any = None

    def __call__(self, client: Client, cmd: Any, args: list[bytes]) -> Any:
        if self.writes_only and not (
            cmd.is_write
            or cmd.name in ("eval", "evalsha", "fcall")
            or (cmd.name == "exec" and client.multi is not None and any(c.is_write for c, _ in client.multi))
        ):
            return None
        if cmd.name in ("client", "quit") or (cmd.parent is not None and cmd.parent.name == "client"):
            return None
        client.blocked = True
        self.postponed.append((client, args))
        return Raw(b"")

    def extend(self, timeout_ms: int, writes_only: bool) -> None:
        now = time.monotonic()
        self.writes_only = self.writes_only and writes_only if self.until > now else writes_only
        self.until = max(self.until, now + timeout_ms / 1000)
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.node.call_later(self.until - now, self.end)

    def end(self) -> None:
        if self.node.pause_check is self:
            self.node.pause_check = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        postponed, self.postponed = self.postponed, []
        for client, args in postponed:
            client.blocked = False
            conn = client.conn
            if conn is not None and not getattr(conn, "closing", False) and hasattr(conn, "resume"):
                conn.resume(args)


@command(
    "client|pause",
    -3,
    "admin noscript loading stale",
    group="connection",
    summary="Suspends commands processing.",
    since="3.0.0",
)
def client_pause(client: Client, args: list[bytes]) -> Any:
    timeout = _strict_int(args[2])
    if timeout is None:
        raise CommandError("ERR timeout is not an integer or out of range")
    if timeout < 0:
        raise CommandError("ERR timeout is negative")
    if len(args) > 4:
        raise CommandError("ERR syntax error")
    mode = args[3].lower() if len(args) == 4 else b"all"
    if mode not in (b"write", b"all"):
        raise CommandError("ERR syntax error")
    node = client.node
    pause = node.pause_check if isinstance(node.pause_check, _Pause) else _Pause(node)
    pause.extend(timeout, mode == b"write")
    node.pause_check = pause
    return OK


@command(
    "client|unpause", 2, "admin noscript loading stale", group="connection", summary="Resumes processing of clients."
)
def client_unpause(client: Client, args: list[bytes]) -> Any:
    pause = client.node.pause_check
    if isinstance(pause, _Pause):
        pause.end()
    return OK


# Help lines by subcommand, printed for the subcommands registered (other families
# may add CLIENT PAUSE, UNBLOCK, TRACKING...).
_CLIENT_HELP: dict[str, list[str]] = {
    "caching": ["CACHING (YES|NO)", "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes."],
    "getredir": ["GETREDIR", "    Return the client ID we are redirecting to when tracking is enabled."],
    "getname": ["GETNAME", "    Return the name of the current connection."],
    "id": ["ID", "    Return the ID of the current connection."],
    "info": ["INFO", "    Return information about the current client connection."],
    "kill": [
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "    * ID <client-id>",
        "      Kill connections by client id.",
    ],
    "list": [
        "LIST [options ...]",
        "    Return information about client connections. Options:",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Return clients of specified type.",
        "    * ID <client-id> [<client-id> ...]",
        "      Return clients of specified IDs only.",
    ],
    "unpause": ["UNPAUSE", "    Stop the current client pause, resuming traffic."],
    "pause": ["PAUSE <timeout> [WRITE|ALL]", "    Suspend all, or just write, clients for <timeout> milliseconds."],
    "reply": ["REPLY (ON|OFF|SKIP)", "    Control the replies sent to the current connection."],
    "setname": ["SETNAME <name>", "    Assign the name <name> to the current connection."],
    "setinfo": [
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are:",
        "    * LIB-NAME: the client lib name.",
        "    * LIB-VER: the client lib version.",
    ],
    "unblock": ["UNBLOCK <clientid> [TIMEOUT|ERROR]", "    Unblock the specified blocked client."],
    "tracking": [
        "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
        "         [OPTIN] [OPTOUT] [NOLOOP]",
        "    Control server assisted client side caching.",
    ],
    "trackinginfo": ["TRACKINGINFO", "    Report tracking status for the current connection."],
    "no-evict": ["NO-EVICT (ON|OFF)", "    Protect current client connection from eviction."],
    "no-touch": [
        "NO-TOUCH (ON|OFF)",
        "    Will not touch LRU/LFU stats when this mode is on.",
    ],
}


@command(
    "client|help",
    2,
    "loading stale",
    group="connection",
    summary="Returns helpful text about the different subcommands.",
)
def client_help(client: Client, args: list[bytes]) -> Any:
    registered = client.node.table["client"].subcommands
    lines = ["CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
    for name, text in _CLIENT_HELP.items():
        if name in registered:
            lines.extend(text)
    lines += ["HELP", "    Prints this help."]
    return Raw(b"*%d\r\n" % len(lines) + b"".join(b"+%b\r\n" % line.encode() for line in lines))
