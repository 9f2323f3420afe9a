"""Start-up leader discovery: before serving, ask the sentinels who leads, so a restart never makes a leader.

Theory of operation
-------------------
A node configured with ``leader-discovery-sentinels`` asks each of them, before it listens for
clients, ``SENTINEL MASTER <leader-discovery-group>``: the group's leader address and its
config-epoch (the epoch of the promotion that made it leader). :func:`decide` turns the answers
into the role to start in; it is a pure function, and :func:`discover` is its asyncio shell
(short timeouts per sentinel, rounds until ``leader-discovery-timeout``).

Rules, in order:

1. Answers that name a leader win over answers that do not know the group. Among them the
   highest config-epoch wins; if sentinels at that epoch disagree, the address most of them name
   (a tie waits for more answers; at the deadline, the address that is not this node).
2. A decision needs the answers of a majority of the sentinels, or a failover still selecting or
   promoting a replica to be over, until the deadline; then the best evidence gathered decides.
   A majority always includes a sentinel of the majority that elected the latest epoch.
3. Named leader = another node: start as its replica, whatever ``replicaof`` says. Named leader
   = this node: start as leader (adopting the config-epoch if the node's own is behind) -- unless
   its data directory is empty while the sentinels know replicas of it: it lost its data (no
   persistence, a new volume), and leading would have the replicas sync the empty dataset. It
   then keeps asking, past the deadline, until the sentinels fail over to a replica (it does not
   listen meanwhile, so they see it down) and starts as that replica's replica.
4. Nobody knows the group (first creation: a majority answered "no such master"), or no
   sentinel answered before the deadline: the configured role, ``replicaof``, with the
   bootstrap rule: a ``replicaof`` naming this node's own announced address (identical pod
   configurations point every pod at pod 0) starts as leader, at epoch 1 if it has no epoch yet.

The residual case is the last one: with every sentinel unreachable for the whole timeout, a
node whose configuration says it leads does lead (docs/guarantees.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import logging
import os
import socket
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal

import hiredis
from kvcluster.common.config import Config
from kvcluster.common.resp import encode_command

if TYPE_CHECKING:
    from kvcluster.node.core import Node

log = logging.getLogger("kvcluster.node")

Addr = tuple[str, int]

# Per sentinel and round: connect + AUTH + SENTINEL MASTER. Short, so one dead sentinel (a
# blackholed address) does not hold a round up; rounds repeat until the deadline.
ASK_TIMEOUT = 1.0
RETRY_DELAY = 0.25
RESOLVE_TIMEOUT = 1.0
# Failover states after which SENTINEL MASTER names the promoted replica at its new epoch.
_SETTLED_FAILOVER_STATES = ("reconf_slaves", "update_config")


# -- what the sentinels said ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Known:
    """The sentinel names the group's leader (and the config-epoch it leads at)."""

    sentinel: Addr
    leader: Addr
    epoch: int
    # A failover that has not promoted its replica yet: the leader named may be about to change.
    failover_pending: bool = False
    # How many replicas of the group the sentinel knows (num-slaves).
    replicas: int = 0
    # The leader host's IP addresses (filled in by the shell when it is a name).
    leader_ips: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True)
class Unknown:
    """The sentinel answered but does not monitor the group ("No such master with that name")."""

    sentinel: Addr


@dataclasses.dataclass(frozen=True)
class Unreachable:
    """No answer: connection refused, timed out, or refused our AUTH."""

    sentinel: Addr
    error: str


Answer = Known | Unknown | Unreachable


@dataclasses.dataclass(frozen=True)
class Identity:
    """The addresses that reach this node: how to recognise it in a sentinel's answer."""

    hosts: frozenset[str]  # names and IPs, lower case
    port: int

    def is_self(self, host: str, port: int, ips: Iterable[str] = ()) -> bool:
        if port != self.port:
            return False
        return host.lower() in self.hosts or any(ip in self.hosts for ip in ips)


@dataclasses.dataclass(frozen=True)
class Decision:
    """The role to start in. ``leader`` is None for "be the leader"; ``epoch`` is adopted first."""

    leader: Addr | None
    epoch: int | None
    source: Literal["sentinels", "configuration", "bootstrap"]
    reason: str

    @property
    def role(self) -> str:
        return "leader" if self.leader is None else "replica"

    def describe(self) -> str:
        role = "leader" if self.leader is None else f"replica of {self.leader[0]}:{self.leader[1]}"
        epoch = f" at epoch {self.epoch}" if self.epoch is not None else ""
        return f"starting as {role}{epoch} ({self.source}): {self.reason}"


class KeepAsking:
    """Not decided yet: ask again (h11's NEED_DATA)."""

    def __init__(self, why: str):
        self.why = why

    def __repr__(self) -> str:
        return f"KeepAsking({self.why!r})"


# -- the decision -----------------------------------------------------------------------------------


def decide(
    answers: Sequence[Answer],
    *,
    sentinels: int,
    me: Identity,
    replicaof: Addr | None,
    replicaof_ips: Iterable[str] = (),
    epoch: int,
    final: bool,
    has_data: bool = True,
) -> Decision | KeepAsking:
    """The role to start in from the latest answer of each sentinel (see the module's rules).

    ``sentinels`` is how many are configured, ``epoch`` the node's persisted epoch (0: none),
    ``has_data`` whether its data directory holds a snapshot or an AOF, ``final`` whether the
    deadline has passed (then something is decided, except for a node that lost its data).
    """
    reachable = [a for a in answers if not isinstance(a, Unreachable)]
    known = [a for a in answers if isinstance(a, Known)]
    majority = sentinels // 2 + 1
    heard = f"{len(reachable)} of {sentinels} sentinel(s) answered"
    if known:
        top_epoch = max(a.epoch for a in known)
        top = [a for a in known if a.epoch == top_epoch]
        votes = Counter(a.leader for a in top)
        ranked = votes.most_common()
        tied = [addr for addr, n in ranked if n == ranked[0][1]]
        if len(tied) > 1:
            if not final:
                return KeepAsking(f"sentinels at epoch {top_epoch} disagree: {_addrs(tied)}")
            others = sorted(addr for addr in tied if not _names_self(me, addr, top))
            leader = others[0] if others else tied[0]
        else:
            leader = tied[0]
        pending = any(a.failover_pending for a in top)
        if not final and pending:
            return KeepAsking(f"a failover of the group is in progress ({heard})")
        if not final and len(reachable) < majority:
            return KeepAsking(f"{heard}, waiting for a majority ({majority})")
        said = f"{votes[leader]} sentinel(s) name {leader[0]}:{leader[1]} at config-epoch {top_epoch} ({heard})"
        if pending:
            said += "; a failover was still in progress at the deadline"
        if _names_self(me, leader, top):
            replicas = max(a.replicas for a in top if a.leader == leader)
            if not has_data and replicas:
                return KeepAsking(
                    f"{said}: this node, but its data directory is empty and the sentinels know {replicas} "
                    "replica(s) of it: waiting for them to fail over to one (leading would empty them)"
                )
            if epoch < top_epoch:
                # Promoted at that epoch, yet its directory does not say so: lost or replaced.
                said += f": this node, whose data directory is at epoch {epoch} (was it lost?)"
                return Decision(None, top_epoch, "sentinels", said)
            return Decision(None, None, "sentinels", said + ": this node")
        return Decision(leader, None, "sentinels", said)
    if not final and len(reachable) < majority:
        return KeepAsking(f"{heard}, none knows the group yet")
    why = (
        f"no sentinel of {sentinels} knows the group ({heard}): first creation"
        if reachable
        else f"no sentinel of {sentinels} answered before the deadline"
    )
    return configured_role(me, replicaof, replicaof_ips, epoch, why)


def configured_role(
    me: Identity, replicaof: Addr | None, replicaof_ips: Iterable[str], epoch: int, why: str
) -> Decision:
    """``replicaof`` as configured, with the bootstrap rule (a replicaof naming this node: lead)."""
    if replicaof is None:
        return Decision(None, None, "configuration", f"{why}; no replicaof configured")
    if me.is_self(replicaof[0], replicaof[1], replicaof_ips):
        return Decision(
            None,
            1 if epoch == 0 else None,
            "bootstrap",
            f"{why}; replicaof {replicaof[0]} {replicaof[1]} is this node's own address",
        )
    return Decision(replicaof, None, "configuration", f"{why}; replicaof {replicaof[0]} {replicaof[1]}")


def _names_self(me: Identity, leader: Addr, answers: Iterable[Known]) -> bool:
    ips = {ip for a in answers if a.leader == leader for ip in a.leader_ips}
    return me.is_self(leader[0], leader[1], ips)


def _addrs(addrs: Iterable[Addr]) -> str:
    return ", ".join(f"{h}:{p}" for h, p in addrs)


# -- the asyncio shell -----------------------------------------------------------------------------


def parse_master_reply(sentinel: Addr, reply: object) -> Answer:
    """A ``SENTINEL MASTER`` reply (RESP2 flat list or RESP3 map) -> the answer it gives."""
    if isinstance(reply, dict):
        fields = {_text(k): _text(v) for k, v in reply.items()}
    elif isinstance(reply, list) and len(reply) % 2 == 0:
        fields = {_text(reply[i]): _text(reply[i + 1]) for i in range(0, len(reply), 2)}
    else:
        return Unreachable(sentinel, f"unexpected reply {reply!r:.80}")
    try:
        leader = (fields["ip"], int(fields["port"]))
        epoch = int(fields.get("config-epoch", "0"))
        replicas = int(fields.get("num-slaves", "0"))
    except (KeyError, ValueError):
        return Unreachable(sentinel, f"unexpected reply {reply!r:.80}")
    state = fields.get("failover-state", "")
    pending = bool(state) and state not in _SETTLED_FAILOVER_STATES
    return Known(sentinel, leader, epoch, failover_pending=pending, replicas=replicas)


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


async def ask_sentinel(sentinel: Addr, group: str, password: str, timeout: float = ASK_TIMEOUT) -> Answer:
    """One sentinel's answer about ``group`` (never raises)."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(sentinel[0], sentinel[1])
            request = encode_command("AUTH", password) if password else b""
            writer.write(request + encode_command("SENTINEL", "MASTER", group))
            parser = hiredis.Reader()
            replies: list[object] = []
            while len(replies) < (2 if password else 1):
                data = await reader.read(1 << 16)
                if not data:
                    return Unreachable(sentinel, "connection closed")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    replies.append(reply)
    except (OSError, TimeoutError, hiredis.ProtocolError) as e:
        return Unreachable(sentinel, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
    finally:
        if writer is not None:
            writer.close()
    if password and isinstance(replies[0], hiredis.ReplyError):
        return Unreachable(sentinel, f"AUTH refused: {replies[0]}")
    reply = replies[-1]
    if isinstance(reply, hiredis.ReplyError):
        if "no such master" in str(reply).lower():
            return Unknown(sentinel)
        return Unreachable(sentinel, str(reply))
    return parse_master_reply(sentinel, reply)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def resolve(host: str, timeout: float = RESOLVE_TIMEOUT) -> frozenset[str]:
    """The IP addresses of ``host`` (itself for an IP; none when it does not resolve in time)."""
    if _is_ip(host):
        return frozenset([host])
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout)
    except (OSError, TimeoutError):
        return frozenset()
    return frozenset(str(info[4][0]) for info in infos)


def _local_addresses() -> set[str]:
    """Every address of this machine's interfaces (a wildcard bind answers on all of them)."""
    import psutil

    out = set()
    with contextlib.suppress(Exception):  # an odd interface must not stop the start-up
        for addrs in psutil.net_if_addrs().values():
            for a in addrs:
                if a.family in (socket.AF_INET, socket.AF_INET6):
                    out.add(a.address.split("%", 1)[0].lower())
    return out


async def identity(config: Config) -> Identity:
    """This node as others address it: replica-announce-ip/port, else its bind addresses and port."""
    hosts: set[str] = set()
    announced = config["replica-announce-ip"]
    if announced:
        hosts.add(announced.lower())
        hosts |= await resolve(announced)
    for bind in config["bind"] or ["127.0.0.1"]:
        bind = bind.lstrip("-").lower()
        if bind in ("*", "", "0.0.0.0", "::", "::*"):
            hosts |= _local_addresses()
        else:
            hosts.add(bind)
            if bind in ("127.0.0.1", "::1"):
                hosts.add("localhost")
    return Identity(frozenset(hosts), config["replica-announce-port"] or config["port"])


def configured_replicaof(config: Config) -> Addr | None:
    words = config["replicaof"]
    if not words or [w.lower() for w in words] == ["no", "one"]:
        return None
    return (words[0], int(words[1]))


@dataclasses.dataclass
class _Asker:
    sentinels: list[Addr]
    group: str
    password: str
    latest: dict[Addr, Answer] = dataclasses.field(default_factory=dict)
    _resolved: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)

    async def round(self, timeout: float) -> list[Answer]:
        answers = await asyncio.gather(*(ask_sentinel(s, self.group, self.password, timeout) for s in self.sentinels))
        for answer in answers:
            previous = self.latest.get(answer.sentinel)
            # A sentinel that answered once keeps its answer through a later timeout.
            if not isinstance(answer, Unreachable) or previous is None or isinstance(previous, Unreachable):
                if isinstance(answer, Known) and not _is_ip(answer.leader[0]):
                    host = answer.leader[0]
                    if host not in self._resolved:
                        self._resolved[host] = await resolve(host)
                    answer = dataclasses.replace(answer, leader_ips=self._resolved[host])
                self.latest[answer.sentinel] = answer
        return list(answers)


def has_local_data(config: Config) -> bool:
    """Whether the data directory holds a snapshot or AOF files to load."""
    directory = config["dir"] or "."
    if os.path.exists(os.path.join(directory, config["dbfilename"])):
        return True
    aof_dir = os.path.join(directory, config["appenddirname"])
    with contextlib.suppress(OSError), os.scandir(aof_dir) as entries:
        return any(True for _ in entries)
    return False


async def discover(config: Config, epoch: int) -> Decision:
    """Ask the configured sentinels until a decision is reached (normally by the timeout)."""
    from kvcluster.node.settings import parse_sentinel_list

    replicaof = configured_replicaof(config)
    sentinels = list(dict.fromkeys(parse_sentinel_list(config["leader-discovery-sentinels"])))
    if not sentinels and replicaof is None:
        return Decision(None, None, "configuration", "no replicaof configured")
    me = await identity(config)
    replicaof_ips = await resolve(replicaof[0]) if replicaof is not None else frozenset()
    if not sentinels:
        return configured_role(me, replicaof, replicaof_ips, epoch, "no leader-discovery-sentinels configured")
    group = config["leader-discovery-group"]
    asker = _Asker(sentinels, group, config["leader-discovery-password"])
    loop = asyncio.get_running_loop()
    deadline = loop.time() + config["leader-discovery-timeout"] / 1000
    log.info("Leader discovery: asking %d sentinel(s) who leads %r: %s", len(sentinels), group, _addrs(sentinels))
    has_data = has_local_data(config)
    rounds = 0
    last_why = ""
    while True:
        rounds += 1
        remaining = deadline - loop.time()
        answers = await asker.round(min(ASK_TIMEOUT, max(remaining, 0.2)) if remaining > 0 else ASK_TIMEOUT)
        final = loop.time() >= deadline
        result = decide(
            list(asker.latest.values()),
            sentinels=len(sentinels),
            me=me,
            replicaof=replicaof,
            replicaof_ips=replicaof_ips,
            epoch=epoch,
            final=final,
            has_data=has_data,
        )
        if isinstance(result, Decision):
            for answer in asker.latest.values():
                if isinstance(answer, Unreachable):
                    log.warning("Leader discovery: sentinel %s:%d: %s", *answer.sentinel, answer.error)
            return result
        if result.why != last_why or rounds % 40 == 0:
            last_why = result.why
            errors = "; ".join(
                f"{a.sentinel[0]}:{a.sentinel[1]}: {a.error}" for a in answers if isinstance(a, Unreachable)
            )
            log.info("Leader discovery: %s%s", result.why, f" ({errors})" if errors else "")
        # Past the deadline (a node waiting for a failover) at the same pace.
        await asyncio.sleep(RETRY_DELAY if final else max(0.0, min(RETRY_DELAY, deadline - loop.time())))


async def apply_start_up_discovery(config: Config, node: Node) -> Decision:
    """Decide the start-up role and put it in place before anything loads or listens.

    The decision becomes the effective ``replicaof`` (persistence loads a replica's data as a
    replica does, the replication shell follows it) and a bootstrap or adopted epoch is persisted.
    """
    decision = await discover(config, node.epoch)
    asked = bool(config["leader-discovery-sentinels"])
    if asked or decision.source == "bootstrap":
        log.warning("Leader discovery: %s", decision.describe())
    if decision.epoch is not None:
        node.set_epoch(decision.epoch)
    leader = decision.leader
    words = [] if leader is None else [leader[0], str(leader[1])]
    if words != (config["replicaof"] if configured_replicaof(config) is not None else []):
        config.set_value("replicaof", words, source="runtime")
    return decision
