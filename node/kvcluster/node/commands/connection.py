"""Connection commands: PING, ECHO, QUIT, SELECT, AUTH, HELLO, CLIENT, RESET."""

from __future__ import annotations

from kvcluster.common.resp import OK, PONG, CommandError, Push
from kvcluster.node.client import Client
from kvcluster.node.commands.table import command


@command(
    "ping",
    -1,
    "fast stale loading no_auth",
    group="connection",
    summary="Returns the server's liveliness response.",
)
def ping(client: Client, args: list[bytes]):
    if len(args) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if client.resp == 2 and client.in_pubsub:
        return [b"pong", args[1] if len(args) == 2 else b""]
    if len(args) == 2:
        return args[1]
    return PONG


@command("echo", 2, "fast stale loading", group="connection", summary="Returns the given string.")
def echo(client: Client, args: list[bytes]):
    return args[1]


@command(
    "quit",
    -1,
    "fast stale loading no_auth no_multi allow_busy",
    group="connection",
    summary="Closes the connection.",
)
def quit_(client: Client, args: list[bytes]):
    client.close_after_reply = True
    return OK


__all__ = ["Push"]


# The Redis version we report: the command set and semantics we follow.
REDIS_COMPAT_VERSION = b"7.2.0"


@command(
    "hello",
    -1,
    "fast stale loading no_auth allow_busy",
    group="connection",
    summary="Handshakes with the server: protocol version, authentication, client name.",
)
def hello(client: Client, args: list[bytes]):
    version = client.resp
    i = 1
    if len(args) > 1:
        try:
            version = int(args[1])
        except ValueError:
            raise CommandError("ERR Protocol version is not an integer or out of range") from None
        if version not in (2, 3):
            raise CommandError("NOPROTO unsupported protocol version")
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


def _check_client_name(name: bytes) -> bytes:
    if any(c <= 32 or c > 126 for c in name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")
    return name


def _authenticate(client: Client, username: bytes, password: bytes) -> None:
    """AUTH semantics: the only user is ``default``, whose password is requirepass."""
    required = client.node.config["requirepass"]
    if username == b"default" and (not required or password == required.encode()):
        client.authenticated = True
        client.update_slow_path()
        return
    raise CommandError("WRONGPASS invalid username-password pair or user is disabled.")
