"""Pub/Sub: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB.

The registry is on the node (``Node.channels``, ``Node.patterns``,
``Node.shard_channels``: name -> subscribed clients) and mirrored on each client
(``client.subscriptions``, ``.patterns``, ``.shard_subscriptions``);
``Node.remove_client`` drops a disconnected client from it. Shard channels are a
namespace of their own, as in Redis 7 (SPUBLISH reaches SSUBSCRIBE only).

Replies. A (un)subscribe command answers once per channel. The handler encodes
those answers itself and returns them as one :class:`Raw` value, so they take the
place of the command's reply in the connection's output: in order with the
replies of the commands pipelined around it, and inside EXEC's array exactly
where Redis puts them. They are arrays in RESP2 and Push values in RESP3.

Messages go to other clients with ``push_raw`` (encoded once per protocol, not
once per receiver). A message to the publishing client itself (RESP3) is
ordered by the connection: writes during a read's batch join its replies.

While subscribed, a RESP2 client may only (un)subscribe, PING, QUIT and RESET;
the gate enforces that from ``client.slow_path``, so every change of
subscriptions calls :func:`_after_change`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kvcluster.common.resp import CommandError, Raw
from kvcluster.node.client import Client
from kvcluster.node.commands.table import command, container
from kvcluster.node.glob import compile_glob, glob_match

if TYPE_CHECKING:
    from kvcluster.node.core import Node

_SUBSCRIBE_FLAGS = "pubsub noscript loading stale"


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%b\r\n" % (len(value), value)


def _confirmation(client: Client, kind: bytes, channel: bytes | None, count: int) -> bytes:
    # [kind, channel, count] as a RESP2 array or a RESP3 push. Not client.encode: CLIENT
    # REPLY SKIP counts calls of that, and this is part of a single command's reply.
    head = b">3\r\n" if client.resp == 3 else b"*3\r\n"
    return b"%b%b%b:%d\r\n" % (head, _bulk(kind), _bulk(channel) if channel is not None else _null(client), count)


def _null(client: Client) -> bytes:
    return b"_\r\n" if client.resp == 3 else b"$-1\r\n"


def _after_change(client: Client) -> None:
    """Keep the client's class (output buffer limits, CLIENT LIST TYPE) and dispatch path current."""
    if client.kind in ("normal", "pubsub"):
        client.kind = "pubsub" if client.in_pubsub else "normal"
    client.update_slow_path()


def _count(client: Client) -> int:
    # Redis counts channels and patterns together; shard channels separately.
    return len(client.subscriptions) + len(client.patterns)


# -- subscribing ---------------------------------------------------------------


def _subscribe(
    client: Client,
    names: list[bytes],
    mine: set[bytes],
    registry: dict[bytes, set[Client]],
    kind: bytes,
    shard: bool,
) -> Raw:
    out = []
    for name in names:
        if name not in mine:
            mine.add(name)
            subscribers = registry.get(name)
            if subscribers is None:
                registry[name] = {client}
            else:
                subscribers.add(client)
        count = len(mine) if shard else _count(client)
        out.append(_confirmation(client, kind, name, count))
    _after_change(client)
    return Raw(b"".join(out))


def _unsubscribe(
    client: Client,
    names: list[bytes],
    mine: set[bytes],
    registry: dict[bytes, set[Client]],
    kind: bytes,
    shard: bool,
) -> Raw:
    if not names:
        if not mine:
            # Nothing to leave: one reply with a null channel, as Redis does.
            count = len(mine) if shard else _count(client)
            return Raw(_confirmation(client, kind, None, count))
        names = list(mine)
    out = []
    for name in names:
        if name in mine:
            mine.discard(name)
            subscribers = registry.get(name)
            if subscribers is not None:
                subscribers.discard(client)
                if not subscribers:
                    del registry[name]
        count = len(mine) if shard else _count(client)
        out.append(_confirmation(client, kind, name, count))
    _after_change(client)
    return Raw(b"".join(out))


def unsubscribe_all(client: Client) -> None:
    """Leave every channel, pattern and shard channel without replying (RESET)."""
    node = client.node
    for mine, registry in (
        (client.subscriptions, node.channels),
        (client.patterns, node.patterns),
        (client.shard_subscriptions, node.shard_channels),
    ):
        for name in mine:
            subscribers = registry.get(name)
            if subscribers is not None:
                subscribers.discard(client)
                if not subscribers:
                    del registry[name]
        mine.clear()
    _after_change(client)


@command("subscribe", -2, _SUBSCRIBE_FLAGS, group="pubsub", summary="Listens for messages published to channels.")
def subscribe(client: Client, args: list[bytes]) -> Any:
    return _subscribe(client, args[1:], client.subscriptions, client.node.channels, b"subscribe", False)


@command(
    "unsubscribe",
    -1,
    _SUBSCRIBE_FLAGS,
    group="pubsub",
    summary="Stops listening to messages posted to channels.",
)
def unsubscribe(client: Client, args: list[bytes]) -> Any:
    return _unsubscribe(client, args[1:], client.subscriptions, client.node.channels, b"unsubscribe", False)


@command(
    "psubscribe",
    -2,
    _SUBSCRIBE_FLAGS,
    group="pubsub",
    summary="Listens for messages published to channels that match one or more patterns.",
)
def psubscribe(client: Client, args: list[bytes]) -> Any:
    return _subscribe(client, args[1:], client.patterns, client.node.patterns, b"psubscribe", False)


@command(
    "punsubscribe",
    -1,
    _SUBSCRIBE_FLAGS,
    group="pubsub",
    summary="Stops listening to messages published to channels that match one or more patterns.",
)
def punsubscribe(client: Client, args: list[bytes]) -> Any:
    return _unsubscribe(client, args[1:], client.patterns, client.node.patterns, b"punsubscribe", False)


@command(
    "ssubscribe",
    -2,
    _SUBSCRIBE_FLAGS,
    keys=(1, -1, 1),
    group="pubsub",
    summary="Listens for messages published to shard channels.",
    since="7.0.0",
)
def ssubscribe(client: Client, args: list[bytes]) -> Any:
    return _subscribe(client, args[1:], client.shard_subscriptions, client.node.shard_channels, b"ssubscribe", True)


@command(
    "sunsubscribe",
    -1,
    _SUBSCRIBE_FLAGS,
    keys=(1, -1, 1),
    group="pubsub",
    summary="Stops listening to messages posted to shard channels.",
    since="7.0.0",
)
def sunsubscribe(client: Client, args: list[bytes]) -> Any:
    return _unsubscribe(client, args[1:], client.shard_subscriptions, client.node.shard_channels, b"sunsubscribe", True)


# -- publishing -------------------------------------------------------------------


class _Message:
    """One message encoded lazily, at most once per protocol version."""

    __slots__ = ("body", "resp2", "resp3")

    def __init__(self, body: bytes):
        self.body = body  # the elements after the array/push header
        self.resp2: bytes | None = None
        self.resp3: bytes | None = None

    def for_client(self, client: Client, length: int) -> bytes:
        if client.resp == 3:
            if self.resp3 is None:
                self.resp3 = b">%d\r\n%b" % (length, self.body)
            return self.resp3
        if self.resp2 is None:
            self.resp2 = b"*%d\r\n%b" % (length, self.body)
        return self.resp2


# Compiled matchers of subscribed patterns. glob's own cache is bounded (LRU), and PUBLISH
# tries every pattern: with many patterns that cache would thrash.
_pattern_matchers: dict[bytes, Callable[[bytes], bool]] = {}


def _pattern_matcher(pattern: bytes) -> Callable[[bytes], bool]:
    matcher = _pattern_matchers.get(pattern)
    if matcher is None:
        if len(_pattern_matchers) >= 65536:  # patterns come and go; forget the stale ones at times
            _pattern_matchers.clear()
        matcher = _pattern_matchers[pattern] = compile_glob(pattern)
    return matcher


def publish_message(node: Node, channel: bytes, message: bytes) -> int:
    """Deliver ``message`` to the subscribers of ``channel`` and matching patterns; receivers.

    Also the entry point for server-side publishers (keyspace notifications, sentinel hello).
    """
    receivers = 0
    subscribers = node.channels.get(channel)
    if subscribers:
        encoded = _Message(b"$7\r\nmessage\r\n%b%b" % (_bulk(channel), _bulk(message)))
        for c in list(subscribers):
            c.push_raw(encoded.for_client(c, 3))
        receivers += len(subscribers)
    if node.patterns:
        tail = b"%b%b" % (_bulk(channel), _bulk(message))
        for pattern, subscribers in list(node.patterns.items()):
            if _pattern_matcher(pattern)(channel):
                encoded = _Message(b"$8\r\npmessage\r\n%b%b" % (_bulk(pattern), tail))
                for c in list(subscribers):
                    c.push_raw(encoded.for_client(c, 4))
                receivers += len(subscribers)
    return receivers


@command(
    "publish",
    3,
    "pubsub loading stale fast may_replicate",
    group="pubsub",
    summary="Posts a message to a channel.",
    since="2.0.0",
)
def publish(client: Client, args: list[bytes]) -> Any:
    return publish_message(client.node, args[1], args[2])


@command(
    "spublish",
    3,
    "pubsub loading stale fast may_replicate",
    keys=(1, 1, 1),
    group="pubsub",
    summary="Post a message to a shard channel",
    since="7.0.0",
)
def spublish(client: Client, args: list[bytes]) -> Any:
    subscribers = client.node.shard_channels.get(args[1])
    if not subscribers:
        return 0
    encoded = _Message(b"$8\r\nsmessage\r\n%b%b" % (_bulk(args[1]), _bulk(args[2])))
    for c in list(subscribers):
        c.push_raw(encoded.for_client(c, 3))
    return len(subscribers)


# -- introspection ----------------------------------------------------------------

container("pubsub", -2, group="pubsub", summary="A container for Pub/Sub commands.")


def _matching_channels(args: list[bytes], registry: dict[bytes, set[Client]]) -> list[bytes]:
    if len(args) > 3:
        sub = args[1].decode("utf-8", "replace")
        raise CommandError(f"ERR unknown subcommand or wrong number of arguments for '{sub}'. Try PUBSUB HELP.")
    if len(args) == 2:
        return list(registry)
    pattern = args[2]
    return [name for name in registry if glob_match(pattern, name)]


def _counts(args: list[bytes], registry: dict[bytes, set[Client]]) -> list[Any]:
    # A flat [channel, count, ...] array (also in RESP3, like Redis 7.0), duplicates kept.
    out: list[Any] = []
    for name in args[2:]:
        subscribers = registry.get(name)
        out.append(name)
        out.append(len(subscribers) if subscribers else 0)
    return out


@command(
    "pubsub|channels",
    -2,
    "pubsub loading stale",
    group="pubsub",
    summary="Returns the active channels.",
    since="2.8.0",
)
def pubsub_channels(client: Client, args: list[bytes]) -> Any:
    return _matching_channels(args, client.node.channels)


@command(
    "pubsub|numsub",
    -2,
    "pubsub loading stale",
    group="pubsub",
    summary="Returns a count of subscribers to channels.",
    since="2.8.0",
)
def pubsub_numsub(client: Client, args: list[bytes]) -> Any:
    return _counts(args, client.node.channels)


@command(
    "pubsub|numpat",
    2,
    "pubsub loading stale",
    group="pubsub",
    summary="Returns a count of unique pattern subscriptions.",
    since="2.8.0",
)
def pubsub_numpat(client: Client, args: list[bytes]) -> Any:
    return len(client.node.patterns)


@command(
    "pubsub|shardchannels",
    -2,
    "pubsub loading stale",
    group="pubsub",
    summary="Returns the active shard channels.",
    since="7.0.0",
)
def pubsub_shardchannels(client: Client, args: list[bytes]) -> Any:
    return _matching_channels(args, client.node.shard_channels)


@command(
    "pubsub|shardnumsub",
    -2,
    "pubsub loading stale",
    group="pubsub",
    summary="Returns the count of subscribers of shard channels.",
    since="7.0.0",
)
def pubsub_shardnumsub(client: Client, args: list[bytes]) -> Any:
    return _counts(args, client.node.shard_channels)


_PUBSUB_HELP = [
    b"PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    b"CHANNELS [<pattern>]",
    b"    Return the currently active channels matching a <pattern> (default: '*').",
    b"NUMPAT",
    b"    Return number of subscriptions to patterns.",
    b"NUMSUB [<channel> ...]",
    b"    Return the number of subscribers for the specified channels, excluding",
    b"    pattern subscriptions(default: no channels).",
    b"SHARDCHANNELS [<pattern>]",
    b"    Return the currently active shard level channels matching a <pattern> (default: '*').",
    b"SHARDNUMSUB [<shardchannel> ...]",
    b"    Return the number of subscribers for the specified shard level channel(s)",
    b"HELP",
    b"    Prints this help.",
]


@command(
    "pubsub|help", 2, "loading stale", group="pubsub", summary="Returns helpful text about the different subcommands."
)
def pubsub_help(client: Client, args: list[bytes]) -> Any:
    return Raw(b"*%d\r\n" % len(_PUBSUB_HELP) + b"".join(b"+%b\r\n" % line for line in _PUBSUB_HELP))
