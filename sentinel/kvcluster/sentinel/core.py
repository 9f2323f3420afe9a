"""The sentinel's failover logic, sans-I/O: observations and the current time in, a Ready out.

Theory of operation
-------------------
This is Redis's ``sentinel.c`` recast in the shape of etcd raft's ``Step``/``Ready``: the
:class:`SentinelCore` owns no sockets and no clock. The I/O shell (``server.py``) calls

* :meth:`SentinelCore.tick` about every 100 ms,
* :meth:`~SentinelCore.link_up` / :meth:`~SentinelCore.link_down` when a connection to a node
  or another sentinel opens or breaks,
* :meth:`~SentinelCore.on_reply` with the reply to a command the core asked it to send,
* :meth:`~SentinelCore.on_hello` with a ``__sentinel__:hello`` message,
* and the command methods (``is_master_down_by_addr``, ``monitor``, ``manual_failover`` ...)
  for what clients ask,

each with the current monotonic time in milliseconds, and after each call takes the
:class:`Ready` with :meth:`~SentinelCore.take_ready` and carries it out **in its field order**:
persist the state first (a vote or a new epoch must be on disk before any message or reply
reveals it), then send the messages, then publish the events.

Rules that make it safe
~~~~~~~~~~~~~~~~~~~~~~~
1. Epochs only grow. ``current_epoch`` is raised by every epoch we hear of (hellos, votes,
   the ``kvcluster_epoch`` nodes report) and persisted before it is used.
2. One vote per epoch per group (``leader_epoch``), persisted before the vote is sent.
3. A failover needs the votes of a majority of all the sentinels this one knows (itself
   included) *and* at least ``quorum`` votes; a sentinel never forgets a peer on its own, so a
   minority can never authorize one.
4. The promoted replica gets ``REPLICAOF NO ONE EPOCH e`` with the elected epoch ``e``; every
   node we reach is told ``EPOCH <config epoch>`` as soon as its link opens (so a returning old
   leader is fenced before anything else), and ``EPOCH e`` when a promotion is sent.
5. TILT: when the core sees time jump (the process stalled, the clock moved), it keeps
   monitoring and answering but stops acting for ``tilt_period``.

Each group is a *master* :class:`Instance`, with its replicas and the other sentinels as
instances too (one record type for all three, as in sentinel.c). :meth:`SentinelCore.tick`
runs, per instance, the monitoring half (PING, INFO, hello) and then, unless in TILT, the
acting half (subjectively down, objectively down, start a failover, the failover state
machine: one method per state, each advancing or aborting on ``failover_timeout``).
"""

from __future__ import annotations

import enum
import fnmatch
import ipaddress
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kvcluster.sentinel.info import NodeInfo, parse_info

Addr = tuple[str, int]
HELLO_CHANNEL = "__sentinel__:hello"

MASTER = "master"
SLAVE = "slave"
SENTINEL = "sentinel"


@dataclass
class Timing:
    """Redis's sentinel.c periods (ms); tests shorten some."""

    ping_period: int = 1000
    info_period: int = 10000
    ask_period: int = 1000
    publish_period: int = 2000
    tilt_trigger: int = 2000
    tilt_period: int = 30000
    election_timeout: int = 10000
    max_desync: int = 1000
    slave_reconf_timeout: int = 10000
    min_link_reconnect_period: int = 15000
    max_pending: int = 100
    # kvcluster: how long SELECT_SLAVE waits for INFO newer than the election from the
    # candidates (their offsets are final once the leader is gone).
    select_wait: int = 1000
    # kvcluster: random delay between ODOWN and asking for votes, so that sentinels that see
    # the failure together do not split the vote (raft's randomized election timeout).
    start_desync: int = 300
    # kvcluster: how often to poll INFO while waiting for a promotion or a catch-up.
    fast_info_period: int = 100


class FailoverState(enum.IntEnum):
    """In the order a failover goes through them (compared with ``>=``)."""

    NONE = 0
    WAIT_START = 1
    SELECT_SLAVE = 2
    WAIT_SYNC = 3  # kvcluster: planned failover, writes paused until the replica caught up
    SEND_SLAVEOF_NOONE = 4
    WAIT_PROMOTION = 5
    RECONF_SLAVES = 6
    UPDATE_CONFIG = 7

    @property
    def text(self) -> str:
        return self.name.lower()


class SentinelError(Exception):
    """A command refused; ``message`` is the error line with its prefix (``ERR ...``)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# -- the Ready --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``args`` on the command link to ``addr``; its reply comes back to on_reply with ``tag``."""

    addr: Addr
    args: tuple[str, ...]
    tag: tuple[str, ...]


@dataclass(frozen=True)
class Event:
    """A Sentinel event: logged, and published on channel ``kind`` (``+sdown``) unless debug."""

    kind: str
    text: str
    level: str = "warning"  # warning | notice | log (logged, not published) | debug


@dataclass
class Ready:
    """What the shell must do, **in this order**:

    1. ``persist``: write the state (:meth:`SentinelCore.state_lines`) durably (fsync). Votes
       and epochs must be on disk before any message below, or the reply of the command that
       produced them, leaves the process.
    2. ``messages``: send, in order (order per link matters: EPOCH before REPLICAOF).
    3. ``events``: log them and publish them to subscribed clients.
    4. ``disconnects``: close these links (the shell reconnects while they are wanted).
    """

    persist: bool = False
    messages: list[Send] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    disconnects: list[Addr] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.persist or self.messages or self.events or self.disconnects)


@dataclass(frozen=True)
class Err:
    """An error reply (or a failed send) as an observation value."""

    message: str


@dataclass(frozen=True)
class LinkSpec:
    kind: str  # "node" or "sentinel"
    auth_user: str = ""
    auth_pass: str = ""


class Link:
    """One connection to an address, shared by every instance at that address (instanceLink)."""

    def __init__(self, addr: Addr, now: float):
        self.addr = addr
        self.connected = False
        self.connected_since = 0.0
        self.local_ip = ""
        self.pending = 0
        self.ping_pending_since = 0.0  # the oldest unanswered PING (0: none)
        self.last_ping_sent = 0.0
        self.last_avail = now  # last valid PING reply (or creation)
        self.last_pong = now  # last PING reply of any kind
        self.last_pub = 0.0  # last hello sent to a seed address


# -- instances ---------------------------------------------------------------------------------


class Instance:
    """A monitored master (a group), one of its replicas, or another sentinel watching it."""

    def __init__(self, kind: str, name: str, host: str, port: int, master: Instance | None, now: float):
        self.kind = kind
        self.name = name  # group name / "host:port" / runid
        self.host = host
        self.port = port
        self.master = master
        self.runid = ""
        self.created = now
        # Monitoring.
        self.sdown = False
        self.odown = False
        self.s_down_since = 0.0
        self.o_down_since = 0.0
        self.down_cleared_at = 0.0
        self.info_refresh = 0.0  # when the last INFO reply arrived
        self.info_asked = 0.0  # when the request of that reply was sent (what it is at least as new as)
        self.info_sent = 0.0
        self.info_pending = False
        self.role_reported = MASTER if kind == MASTER else SLAVE
        self.role_reported_time = now
        self.last_pub_time = 0.0
        self.node_epoch: int | None = None
        self.fenced = False
        self.fenced_since = 0.0
        self.conf_sent = -1e15  # last convert-to-slave / fix-slave-config sent (long ago)
        # Replica facts (INFO).
        self.master_link_down_time = 0
        self.slave_priority = 100
        self.slave_master_host = ""
        self.slave_master_port = 0
        self.slave_master_link_up = False
        self.slave_repl_offset = 0
        self.slave_conf_change_time = now
        self.replica_announced = True
        self.master_repl_offset = 0
        # Failover flags on a replica.
        self.promoted = False
        self.reconf_sent = False
        self.reconf_inprog = False
        self.reconf_done = False
        self.reconf_sent_time = 0.0
        # Sentinel peer: its answers to IS-MASTER-DOWN-BY-ADDR and its hellos.
        self.master_down = False
        self.last_master_down_reply_time = 0.0
        self.last_ask_sent = 0.0
        self.last_hello_time = 0.0
        self.leader = ""  # master: who we voted for; sentinel: who it voted for
        self.leader_epoch = 0
        # Master (group) configuration and failover state.
        self.slaves: dict[str, Instance] = {}
        self.sentinels: dict[str, Instance] = {}
        self.quorum = 2
        self.down_after = 30000
        self.failover_timeout = 180000
        self.parallel_syncs = 1
        self.auth_pass = ""
        self.auth_user = ""
        self.reboot_down_after = 0
        self.max_write_pause = 5000
        self.config_epoch = 0
        self.failover_epoch = 0
        self.failover_state = FailoverState.NONE
        self.failover_state_change_time = 0.0
        self.failover_start_time = -1e15  # long ago: the first failover may start at once
        self.failover_forced = False
        self.promoted_slave: Instance | None = None
        self.start_at = 0.0  # kvcluster: when a pending (desynced) automatic failover starts
        self.select_since = 0.0
        self.sync_paused = False
        self.sync_fenced = False
        self.sync_target: int | None = None
        self.delay_logged = 0.0

    @property
    def addr(self) -> Addr:
        return (self.host, self.port)

    @property
    def in_failover(self) -> bool:
        return self.failover_state != FailoverState.NONE

    def flags(self, disconnected: bool = False) -> str:
        """Redis's flag words, in Redis's order (SENTINEL MASTERS ``flags``)."""
        out = []
        if self.sdown:
            out.append("s_down")
        if self.odown:
            out.append("o_down")
        out.append({MASTER: "master", SLAVE: "slave", SENTINEL: "sentinel"}[self.kind])
        if disconnected:
            out.append("disconnected")
        if self.master_down:
            out.append("master_down")
        if self.in_failover:
            out.append("failover_in_progress")
        if self.promoted:
            out.append("promoted")
        if self.reconf_sent:
            out.append("reconf_sent")
        if self.reconf_inprog:
            out.append("reconf_inprog")
        if self.reconf_done:
            out.append("reconf_done")
        if self.failover_forced:
            out.append("force_failover")
        return ",".join(out)

    def __repr__(self) -> str:
        return f"<Instance {self.kind} {self.name} {self.host}:{self.port}>"


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def new_run_id(rng: random.Random | None = None) -> str:
    return (rng.randbytes(20) if rng is not None else os.urandom(20)).hex()


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# -- the core ----------------------------------------------------------------------------------


class SentinelCore:
    def __init__(
        self,
        myid: str = "",
        port: int = 26379,
        now: float = 0.0,
        rng: random.Random | None = None,
        timing: Timing | None = None,
    ):
        self.rng = rng or random.Random()
        self.myid = myid or new_run_id(self.rng)
        self.port = port
        self.timing = timing or Timing()
        self.now = now
        self.current_epoch = 0
        self.masters: dict[str, Instance] = {}
        self.tilt = False
        self.tilt_start = 0.0
        self.tilt_count = 0
        self.previous_time = now
        self._wall_offset: float | None = None
        self.announce_ip = ""
        self.announce_port = 0
        self.announce_hostnames = False
        self.resolve_hostnames = False
        self.sentinel_user = ""
        self.sentinel_pass = ""
        # Addresses of sentinels given statically (or by DNS): hellos go there directly.
        self.seeds: list[Addr] = []
        # host name -> IP, filled by the shell as it resolves names (announce-hostnames no).
        self.resolved: dict[str, str] = {}
        self.links: dict[Addr, Link] = {}
        self._by_addr: dict[Addr, list[Instance]] = {}
        self._out = Ready()
        # Counters for metrics.
        self.failovers_started = 0
        self.failovers_finished = 0
        self.failovers_aborted = 0

    def start(self, now: float) -> None:
        """The clock starts now (not when the state was loaded): no TILT, no SDOWN for the start-up."""
        self.now = self.previous_time = now
        for link in self.links.values():
            link.last_avail = link.last_pong = now

    # -- the Ready -----------------------------------------------------------------------

    def take_ready(self) -> Ready:
        out, self._out = self._out, Ready()
        return out

    def _persist(self) -> None:
        self._out.persist = True

    def _event(self, kind: str, ri: Instance | None, extra: str = "", level: str = "warning") -> None:
        text = self.describe(ri) if ri is not None else ""
        if extra:
            text = f"{text} {extra}" if text else extra
        self._out.events.append(Event(kind, text, level))

    def _send(self, addr: Addr, tag: tuple[str, ...], *args: Any) -> bool:
        link = self.links.get(addr)
        if link is None or not link.connected or link.pending >= self.timing.max_pending:
            return False
        link.pending += 1
        self._out.messages.append(Send(addr, tuple(str(a) for a in args), tag))
        return True

    # -- addresses ---------------------------------------------------------------------------

    def announced_host(self, host: str) -> str:
        """The form of ``host`` we hand out: as given with announce-hostnames, else its IP when known."""
        if self.announce_hostnames or is_ip(host):
            return host
        return self.resolved.get(host, host)

    def describe(self, ri: Instance) -> str:
        """Redis's ``%@``: ``<type> <name> <ip> <port> [@ <master> <ip> <port>]``."""
        host = self.announced_host(ri.host)
        if ri.kind == MASTER:
            return f"master {ri.name} {host} {ri.port}"
        m = ri.master
        assert m is not None
        mhost, mport = self.current_master_addr(m)
        name = f"{host}:{ri.port}" if ri.kind == SLAVE else ri.name
        return f"{ri.kind} {name} {host} {ri.port} @ {m.name} {mhost} {mport}"

    def current_master_addr(self, master: Instance) -> Addr:
        """Where clients should write: the promoted replica once it took over (Redis does the same)."""
        promoted = master.promoted_slave
        if promoted is not None and master.failover_state >= FailoverState.RECONF_SLAVES:
            return (self.announced_host(promoted.host), promoted.port)
        return (self.announced_host(master.host), master.port)

    def instances(self) -> Iterable[Instance]:
        for m in self.masters.values():
            yield m
            yield from m.slaves.values()
            yield from m.sentinels.values()

    def _reindex(self) -> None:
        """Rebuild the address index and keep one link per wanted address."""
        by_addr: dict[Addr, list[Instance]] = {}
        for ri in self.instances():
            by_addr.setdefault(ri.addr, []).append(ri)
        self._by_addr = by_addr
        wanted = set(by_addr) | set(self.seeds)
        for addr in wanted:
            if addr not in self.links:
                self.links[addr] = Link(addr, self.now)
        for addr in list(self.links):
            if addr not in wanted:
                del self.links[addr]

    def wanted_links(self) -> dict[Addr, LinkSpec]:
        """The connections the shell keeps open (level-triggered: reconcile after every step)."""
        out: dict[Addr, LinkSpec] = {}
        for addr, group in self._by_addr.items():
            node = next((ri for ri in group if ri.kind != SENTINEL), None)
            if node is not None:
                m = node if node.kind == MASTER else node.master
                assert m is not None
                out[addr] = LinkSpec("node", m.auth_user, m.auth_pass)
            else:
                out[addr] = LinkSpec("sentinel", self.sentinel_user, self.sentinel_pass)
        for addr in self.seeds:
            out.setdefault(addr, LinkSpec("sentinel", self.sentinel_user, self.sentinel_pass))
        return out

    def _at(self, addr: Addr) -> list[Instance]:
        return self._by_addr.get(addr, [])

    # -- configuration (SENTINEL MONITOR / REMOVE / SET / RESET, config file) --------------------

    def check_host(self, host: str) -> None:
        if not host or (not is_ip(host) and not self.resolve_hostnames):
            raise SentinelError("ERR Invalid IP address or hostname specified")

    def monitor(self, name: str, host: str, port: int, quorum: int, event: bool = True) -> Instance:
        if name in self.masters:
            raise SentinelError("ERR Duplicated master name")
        if quorum <= 0:
            raise SentinelError("ERR Quorum must be 1 or greater.")
        if not 0 < port < 65536:
            raise SentinelError("ERR Invalid port")
        self.check_host(host)
        m = Instance(MASTER, name, host, port, None, self.now)
        m.quorum = quorum
        self.masters[name] = m
        self._reindex()
        if event:
            self._event("+monitor", m, f"quorum {quorum}")
            self._persist()
        return m

    def remove(self, name: str) -> None:
        m = self.get_master(name)
        self._event("-monitor", m)
        del self.masters[name]
        self._reindex()
        self._persist()

    def get_master(self, name: str) -> Instance:
        m = self.masters.get(name)
        if m is None:
            raise SentinelError("ERR No such master with that name")
        return m

    def add_replica(self, master: Instance, host: str, port: int, event: bool = True) -> Instance:
        key = f"{host}:{port}"
        ri = master.slaves.get(key)
        if ri is None:
            ri = Instance(SLAVE, key, host, port, master, self.now)
            master.slaves[key] = ri
            self._reindex()
            if event:
                self._event("+slave", ri, level="notice")
                self._persist()
        return ri

    def add_sentinel(self, master: Instance, host: str, port: int, runid: str, event: bool = True) -> Instance:
        ri = Instance(SENTINEL, runid, host, port, master, self.now)
        ri.runid = runid
        master.sentinels[runid] = ri
        self._reindex()
        if event:
            self._event("+sentinel", ri, level="notice")
            self._persist()
        return ri

    def set_option(self, name: str, option: str, value: str) -> None:
        """SENTINEL SET <name> <option> <value> (one pair; the command loops)."""
        m = self.get_master(name)
        opt = option.lower()

        def number(minimum: int = 0) -> int:
            try:
                n = int(value)
            except ValueError:
                n = minimum - 1
            if n < minimum:
                raise SentinelError(f"ERR Invalid argument '{value}' for SENTINEL SET '{option}'")
            return n

        if opt == "down-after-milliseconds":
            m.down_after = number(1)
        elif opt == "failover-timeout":
            m.failover_timeout = number(1)
        elif opt == "parallel-syncs":
            m.parallel_syncs = number(1)
        elif opt == "quorum":
            m.quorum = number(1)
        elif opt == "auth-pass":
            m.auth_pass = value
        elif opt == "auth-user":
            m.auth_user = value
        elif opt == "master-reboot-down-after-period":
            m.reboot_down_after = number(0)
        elif opt == "max-write-pause-milliseconds":
            m.max_write_pause = number(1)
        elif opt in ("notification-script", "client-reconfig-script"):
            raise SentinelError("ERR Reconfiguration of scripts path is denied: kvcluster runs no scripts")
        else:
            raise SentinelError(f"ERR Unknown option or number of arguments for SENTINEL SET '{option}'")
        if opt in ("auth-pass", "auth-user"):
            # Reconnect with the new credentials.
            for addr in {m.addr, *(s.addr for s in m.slaves.values())}:
                self._out.disconnects.append(addr)
        self._event("+set", m, f"{option} {value}")
        self._persist()

    def reset(self, pattern: str) -> int:
        """SENTINEL RESET: forget replicas, peers and failover state of matching groups."""
        count = 0
        for m in self.masters.values():
            if fnmatch.fnmatchcase(m.name, pattern):
                self._reset_master(m, keep_sentinels=False)
                self._event("+reset-master", m)
                count += 1
        if count:
            self._reindex()
            self._persist()
        return count

    def _reset_master(self, m: Instance, keep_sentinels: bool) -> None:
        if m.promoted_slave is not None:
            m.promoted_slave.promoted = False
        m.slaves = {}
        if not keep_sentinels:
            m.sentinels = {}
        m.sdown = m.odown = False
        m.s_down_since = m.o_down_since = 0.0
        m.failover_state = FailoverState.NONE
        m.failover_forced = False
        m.promoted_slave = None
        m.start_at = 0.0
        m.sync_paused = m.sync_fenced = False
        m.sync_target = None
        m.leader = ""
        m.runid = ""
        m.info_refresh = 0.0
        m.info_pending = False
        m.role_reported = MASTER
        m.role_reported_time = self.now
        m.node_epoch = None
        m.fenced = False

    # -- inputs ------------------------------------------------------------------------------

    def _advance(self, now: float, wall: float | None = None) -> None:
        # Inputs arrive at least every tick (100 ms); a longer gap means we did not run.
        t = self.timing
        jumped = now < self.previous_time or now - self.previous_time > t.tilt_trigger
        if wall is not None:
            offset = wall - now
            if self._wall_offset is not None and abs(offset - self._wall_offset) > t.tilt_trigger:
                jumped = True
            self._wall_offset = offset
        if jumped:
            self._enter_tilt(now)
        self.previous_time = now
        self.now = now

    def _enter_tilt(self, now: float) -> None:
        if not self.tilt:
            self.tilt_count += 1
            self._event("+tilt", None, "#tilt mode entered")
        self.tilt = True
        self.tilt_start = now

    def link_up(self, addr: Addr, local_ip: str, now: float) -> None:
        self._advance(now)
        link = self.links.get(addr)
        if link is None:
            return
        link.connected = True
        link.connected_since = now
        link.local_ip = local_ip
        link.pending = 0
        nodes = [ri for ri in self._at(addr) if ri.kind != SENTINEL]
        for ri in nodes:
            m = ri if ri.kind == MASTER else ri.master
            assert m is not None
            # Fence first: a returning old leader learns the newer epoch before anything else.
            if m.config_epoch:
                self._send(addr, ("epoch",), "EPOCH", m.config_epoch)
            break
        self._send_ping(link)
        for ri in nodes:
            self._send_info(ri)

    def link_down(self, addr: Addr, now: float) -> None:
        self._advance(now)
        link = self.links.get(addr)
        if link is None:
            return
        link.connected = False
        link.pending = 0
        for ri in self._at(addr):
            ri.info_pending = False

    def resolved_host(self, host: str, ip: str) -> None:
        self.resolved[host] = ip

    def on_reply(self, addr: Addr, tag: tuple[str, ...], value: Any, now: float) -> None:
        self._advance(now)
        link = self.links.get(addr)
        if link is not None and link.pending:
            link.pending -= 1
        kind = tag[0]
        if kind == "ping":
            if link is not None:
                self._on_ping_reply(link, value)
        elif kind == "info":
            self._on_info_reply(addr, tag, value)
        elif kind == "ask":
            self._on_ask_reply(addr, tag, value)
        elif kind == "pause":
            self._on_pause_reply(addr, tag, value)
        elif kind == "syncfence":
            self._on_sync_fence_reply(addr, tag, value)
        # epoch / replicaof / kill / unpause / publish: fire and forget; INFO shows the effect.

    def on_hello(self, payload: str, now: float) -> None:
        self._advance(now)
        self._process_hello(payload)

    # -- replies ---------------------------------------------------------------------------

    def _on_ping_reply(self, link: Link, value: Any) -> None:
        now = self.now
        link.last_pong = now
        text = _text(value.message if isinstance(value, Err) else value)
        if text.startswith(("PONG", "LOADING", "MASTERDOWN")) or text == "pong":
            link.last_avail = now
            link.ping_pending_since = 0.0

    def _on_info_reply(self, addr: Addr, tag: tuple[str, ...], value: Any) -> None:
        for ri in self._at(addr):
            ri.info_pending = False
        if isinstance(value, Err) or value is None:
            return
        info = parse_info(_text(value))
        for ri in list(self._at(addr)):
            if ri.kind == SENTINEL:
                continue
            ri.info_asked = float(tag[3])
            self._refresh_info(ri, info)
            m = ri if ri.kind == MASTER else ri.master
            if (
                m is not None
                and tag[1] == "sync"
                and ri is m
                and m.failover_state == FailoverState.WAIT_SYNC
                and str(m.failover_epoch) == tag[2]
            ):
                # Writes are paused (or fenced): what the leader has now is what the replica needs.
                m.sync_target = info.master_repl_offset
            break  # one node instance per address

    def _on_ask_reply(self, addr: Addr, tag: tuple[str, ...], value: Any) -> None:
        m = self.masters.get(tag[1])
        if m is None or not isinstance(value, list) or len(value) != 3:
            return
        si = m.sentinels.get(tag[2])
        if si is None or si.addr != addr:
            return
        down, leader, leader_epoch = value
        if not isinstance(down, int) or not isinstance(leader_epoch, int):
            return
        si.last_master_down_reply_time = self.now
        si.master_down = down == 1
        leader_text = _text(leader)
        if leader_text != "*":
            si.leader = leader_text
            si.leader_epoch = leader_epoch

    def _refresh_info(self, ri: Instance, info: NodeInfo) -> None:
        """sentinelRefreshInstanceInfo: record what the node says, then act on its role."""
        now = self.now
        m = ri if ri.kind == MASTER else ri.master
        assert m is not None
        if info.run_id:
            if ri.runid and ri.runid != info.run_id:
                self._event("+reboot", ri, level="notice")
            ri.runid = info.run_id
        if info.epoch is not None:
            ri.node_epoch = info.epoch
            if info.epoch > self.current_epoch:
                self.current_epoch = info.epoch
                self._persist()
                self._event("+new-epoch", None, str(self.current_epoch))
        if info.fenced and not ri.fenced:
            ri.fenced_since = now
        ri.fenced = info.fenced
        if info.role == MASTER:
            ri.master_repl_offset = info.master_repl_offset
            if ri.kind == MASTER:
                for line in info.replicas:
                    if (line.host, line.port) != m.addr:
                        self.add_replica(m, line.host, line.port)
        elif info.role == SLAVE:
            if (ri.slave_master_host, ri.slave_master_port) != (info.master_host, info.master_port):
                ri.slave_conf_change_time = now
            ri.slave_master_host = info.master_host
            ri.slave_master_port = info.master_port
            ri.slave_master_link_up = info.master_link_up
            ri.master_link_down_time = 0 if info.master_link_up else info.master_link_down_since_ms
            ri.slave_priority = info.slave_priority
            ri.slave_repl_offset = info.slave_repl_offset
            ri.replica_announced = info.replica_announced
        ri.info_refresh = now
        if info.role and info.role != ri.role_reported:
            ri.role_reported = info.role
            ri.role_reported_time = now
            self._event("+role-change", ri, f"new reported role is {info.role}", level="notice")
        if (
            ri.kind == MASTER
            and info.role == MASTER
            and not info.fenced
            and info.epoch is not None
            and info.epoch > ri.config_epoch
            and not (ri.in_failover and info.epoch <= ri.failover_epoch)  # our own promotion of it
        ):
            # The leader we watch is at a newer epoch than we knew: that is its configuration.
            self._newer_config(ri, ri.host, ri.port, info.epoch, None)
        if self.tilt:
            return
        if (
            ri.kind == MASTER
            and ri.promoted
            and info.role == MASTER
            and ri.failover_state == FailoverState.WAIT_PROMOTION
            and (info.epoch is None or info.epoch >= ri.failover_epoch)
        ):
            self._promotion_done(ri, ri)  # the old leader itself was chosen
        if ri.kind == SLAVE and info.role == MASTER:
            self._slave_reports_master(ri, info)
        elif ri.kind == SLAVE and info.role == SLAVE:
            self._slave_reports_slave(ri, info)

    def _slave_reports_master(self, ri: Instance, info: NodeInfo) -> None:
        m = ri.master
        assert m is not None
        now = self.now
        if ri.promoted:
            if (
                m.failover_state == FailoverState.WAIT_PROMOTION
                and ri is m.promoted_slave
                and (info.epoch is None or info.epoch >= m.failover_epoch)
            ):
                self._promotion_done(m, ri)
            return
        epoch = info.epoch
        if epoch is not None and epoch > m.config_epoch:
            # A leader newer than our configuration. Hellos normally tell us first; if none
            # does for a while (its sentinel aborted or died), adopt it: the newest epoch wins.
            if not info.fenced and not m.in_failover and now - ri.role_reported_time > 2 * self.timing.publish_period:
                self._event("+adopt-leader", ri, f"epoch {epoch}")
                self._newer_config(m, ri.host, ri.port, epoch, None)
            return
        stale = epoch is not None and epoch < m.config_epoch
        # An epoch behind ours is certainly stale: demote at once. Otherwise give the
        # configuration a few hellos to arrive first, as Redis does.
        wait = 0 if stale else 4 * self.timing.publish_period
        if (
            self._master_looks_sane(m)
            and self._no_down_for(ri, wait)
            and now - ri.role_reported_time >= wait
            and now - ri.conf_sent > self.timing.info_period / 2
            and self._repoint(ri, m.host, m.port, m.config_epoch, kill_clients=True)
        ):
            ri.conf_sent = now
            self._event("+convert-to-slave", ri)

    def _slave_reports_slave(self, ri: Instance, info: NodeInfo) -> None:
        m = ri.master
        assert m is not None
        now = self.now
        promoted = m.promoted_slave
        if ri.reconf_sent and promoted is not None and (info.master_host, info.master_port) == promoted.addr:
            ri.reconf_sent = False
            ri.reconf_inprog = True
            self._event("+slave-reconf-inprog", ri)
        if ri.reconf_inprog and info.master_link_up:
            ri.reconf_inprog = False
            ri.reconf_done = True
            self._event("+slave-reconf-done", ri)
        if m.in_failover or ri.reconf_sent or ri.reconf_inprog:
            return
        if self._points_to(ri, m):
            return
        if ri.node_epoch is not None and ri.node_epoch > m.config_epoch:
            return  # it knows a newer epoch than we do: our view is the stale one
        wait = 4 * self.timing.publish_period
        if (
            self._master_looks_sane(m)
            and self._no_down_for(ri, wait)
            and now - ri.slave_conf_change_time > wait
            and now - ri.conf_sent > self.timing.info_period / 2
            and self._repoint(ri, m.host, m.port, m.config_epoch)
        ):
            ri.conf_sent = now
            self._event("+fix-slave-config", ri)

    def _points_to(self, ri: Instance, target: Instance) -> bool:
        if ri.slave_master_port != target.port:
            return False
        host = ri.slave_master_host
        return host in (target.host, self.resolved.get(target.host, target.host))

    def _repoint(self, ri: Instance, host: str, port: int, epoch: int, kill_clients: bool = False) -> bool:
        m = ri.master if ri.kind != MASTER else ri
        assert m is not None
        if not self._send(ri.addr, ("replicaof", m.name), "REPLICAOF", host, port, "EPOCH", epoch):
            return False
        if kill_clients:
            # Clients still connected to a demoted leader reconnect and ask us where to go.
            self._send(ri.addr, ("kill",), "CLIENT", "KILL", "TYPE", "normal")
        self._send_info(ri)
        return True

    def _master_looks_sane(self, m: Instance) -> bool:
        link = self.links.get(m.addr)
        return (
            link is not None
            and link.connected
            and m.role_reported == MASTER
            and not m.sdown
            and not m.odown
            and not m.fenced
            and self.now - m.info_refresh < 2 * self.timing.info_period
        )

    def _no_down_for(self, ri: Instance, ms: float) -> bool:
        if ri.sdown or ri.odown:
            return False
        return ri.down_cleared_at == 0 or self.now - ri.down_cleared_at > ms

    # -- hello -------------------------------------------------------------------------------

    def hello_payload(self, m: Instance, local_ip: str) -> str | None:
        ip = self.announce_ip or local_ip
        if not ip:
            return None
        port = self.announce_port or self.port
        mhost, mport = self.current_master_addr(m)
        return f"{ip},{port},{self.myid},{self.current_epoch},{m.name},{mhost},{mport},{m.config_epoch}"

    def _send_hello(self, ri: Instance, m: Instance) -> None:
        link = self.links.get(ri.addr)
        if link is None or not link.connected:
            return
        payload = self.hello_payload(m, link.local_ip)
        if payload is not None and self._send(ri.addr, ("publish",), "PUBLISH", HELLO_CHANNEL, payload):
            ri.last_pub_time = self.now

    def _force_hello(self, m: Instance) -> None:
        for ri in (m, *m.slaves.values(), *m.sentinels.values()):
            ri.last_pub_time = 0.0

    def _process_hello(self, payload: str) -> None:
        parts = payload.split(",")
        if len(parts) != 8:
            return
        ip, port_text, runid, epoch_text, mname, mhost, mport_text, mepoch_text = parts
        if runid == self.myid:
            return
        try:
            port, epoch, mport, mepoch = int(port_text), int(epoch_text), int(mport_text), int(mepoch_text)
        except ValueError:
            return
        m = self.masters.get(mname)
        if m is None:
            return
        si = m.sentinels.get(runid)
        if si is not None and si.addr != (ip, port):
            si = None
        if si is None:
            # Same id at a new address, or a new id at a known address: the old record goes.
            removed = False
            for group in self.masters.values():
                for key, other in list(group.sentinels.items()):
                    if other.runid == runid or (group is m and other.addr == (ip, port)):
                        del group.sentinels[key]
                        removed = True
            if removed:
                self._event("-dup-sentinel", m, f"#duplicate of {ip}:{port} or {runid}")
            si = self.add_sentinel(m, ip, port, runid)
        if epoch > self.current_epoch:
            self.current_epoch = epoch
            self._persist()
            self._event("+new-epoch", None, str(epoch))
        if mepoch > m.config_epoch:
            self._newer_config(m, mhost, mport, mepoch, si)
        si.last_hello_time = self.now

    def _newer_config(self, m: Instance, host: str, port: int, epoch: int, source: Instance | None) -> None:
        """A configuration newer than ours: its leader is the group's leader now.

        It also supersedes a failover of ours still running (of an older epoch), even when it
        names the address we started from.
        """
        m.config_epoch = epoch
        self._persist()
        if m.in_failover or (host, port) != (m.host, m.port):
            if source is not None:
                self._event("+config-update-from", source)
            self._switch_master(m, host, port)

    # -- the vote ------------------------------------------------------------------------------

    def is_master_down_by_addr(self, host: str, port: int, req_epoch: int, req_runid: str, now: float) -> list[Any]:
        """SENTINEL IS-MASTER-DOWN-BY-ADDR: our view of the master and, with a runid, our vote."""
        self._advance(now)
        m = next(
            (x for x in self.masters.values() if x.port == port and host in (x.host, self.announced_host(x.host))),
            None,
        )
        down = 1 if (m is not None and not self.tilt and m.sdown) else 0
        leader, leader_epoch = "*", 0
        if m is not None and req_runid != "*":
            leader, leader_epoch = self._vote(m, req_epoch, req_runid)
        return [down, (leader or "*").encode(), leader_epoch]

    def _vote(self, m: Instance, req_epoch: int, req_runid: str) -> tuple[str, int]:
        """sentinelVoteLeader: the first to ask in an epoch gets our vote, once; persisted."""
        if req_epoch > self.current_epoch:
            self.current_epoch = req_epoch
            self._persist()
            self._event("+new-epoch", None, str(req_epoch))
        if m.leader_epoch < req_epoch and self.current_epoch <= req_epoch:
            m.leader = req_runid
            m.leader_epoch = self.current_epoch
            self._persist()
            self._event("+vote-for-leader", None, f"{req_runid} {m.leader_epoch}")
            if req_runid != self.myid:
                # Somebody else runs this failover: do not start our own for a while.
                m.failover_start_time = self.now + self.rng.uniform(0, self.timing.max_desync)
        return m.leader, m.leader_epoch

    def _get_leader(self, m: Instance, epoch: int) -> str:
        """sentinelGetLeader: the sentinel with a majority (and >= quorum) of votes in ``epoch``."""
        counters: dict[str, int] = {}
        for si in m.sentinels.values():
            if si.leader and si.leader_epoch == epoch:
                counters[si.leader] = counters.get(si.leader, 0) + 1
        voters = len(m.sentinels) + 1

        def best() -> tuple[str, int]:
            if not counters:
                return "", 0
            winner = max(sorted(counters), key=lambda k: counters[k])
            return winner, counters[winner]

        winner, _ = best()
        myvote, my_epoch = self._vote(m, epoch, winner or self.myid)
        if myvote and my_epoch == epoch:
            counters[myvote] = counters.get(myvote, 0) + 1
        winner, votes = best()
        if winner and (votes < voters // 2 + 1 or votes < m.quorum):
            return ""
        return winner

    # -- the timer ---------------------------------------------------------------------------

    def tick(self, now: float, wall: float | None = None) -> None:
        self._advance(now, wall)
        if self.tilt and now - self.tilt_start >= self.timing.tilt_period:
            self.tilt = False
            self._event("-tilt", None, "#tilt mode exited")
        for link in self.links.values():
            self._maybe_ping(link)
        for m in list(self.masters.values()):
            if self.masters.get(m.name) is not m:
                continue
            self._handle_instance(m)
            for ri in list(m.slaves.values()):
                self._handle_instance(ri)
            for ri in list(m.sentinels.values()):
                self._handle_instance(ri)
            if m.failover_state == FailoverState.UPDATE_CONFIG:
                self._switch_to_promoted(m)
        if self.seeds:
            self._hello_to_seeds()

    def _ping_period(self, addr: Addr) -> float:
        # Ping at least 5 times per down-after period (Redis: once a second at most down-after).
        period = float(self.timing.ping_period)
        for ri in self._at(addr):
            m = ri if ri.kind == MASTER else ri.master
            if m is not None:
                period = min(period, max(100.0, m.down_after / 5))
        return period

    def _maybe_ping(self, link: Link) -> None:
        if not link.connected:
            return
        period = self._ping_period(link.addr)
        now = self.now
        if now - link.last_pong > period and now - link.last_ping_sent > period / 2:
            self._send_ping(link)

    def _send_ping(self, link: Link) -> None:
        if self._send(link.addr, ("ping",), "PING"):
            link.last_ping_sent = self.now
            if not link.ping_pending_since:
                link.ping_pending_since = self.now

    def _send_info(self, ri: Instance, purpose: str = "", epoch: int = 0) -> None:
        tag = ("info", purpose, str(epoch), repr(self.now))
        if self._send(ri.addr, tag, "INFO"):
            ri.info_sent = self.now
            ri.info_pending = True

    def _info_period(self, ri: Instance) -> float:
        m = ri if ri.kind == MASTER else ri.master
        assert m is not None
        t = self.timing
        if ri.kind == SLAVE and (m.odown or m.in_failover or ri.master_link_down_time):
            return 1000
        if ri.kind == MASTER and m.in_failover:
            return 1000
        return t.info_period

    def _handle_instance(self, ri: Instance) -> None:
        m = ri if ri.kind == MASTER else ri.master
        assert m is not None
        now = self.now
        link = self.links.get(ri.addr)
        # -- monitoring half --
        if link is not None and link.connected:
            if ri.kind != SENTINEL:
                period = self._info_period(ri)
                stale_pending = ri.info_pending and now - ri.info_sent > max(period, 5000)
                if (not ri.info_pending or stale_pending) and (ri.info_refresh == 0 or now - ri.info_sent > period):
                    self._send_info(ri)
            if now - ri.last_pub_time > self.timing.publish_period:
                self._send_hello(ri, m)
        if self.tilt:
            return
        # -- acting half --
        self._check_sdown(ri, link)
        if ri.kind == MASTER:
            self._check_odown(ri)
            if self._start_failover_if_needed(ri):
                self._ask_master_state(ri, forced=True)
            self._failover_state_machine(ri)
            self._ask_master_state(ri, forced=False)

    def _silent_for(self, link: Link) -> float:
        """How long the address has not answered a PING (what subjectively-down measures)."""
        if link.ping_pending_since:
            return self.now - link.ping_pending_since
        return 0.0 if link.connected else self.now - link.last_avail

    def _check_sdown(self, ri: Instance, link: Link | None) -> None:
        now = self.now
        m = ri if ri.kind == MASTER else ri.master
        assert m is not None
        elapsed = 0.0
        if link is not None:
            elapsed = self._silent_for(link)
            # A link that stopped answering is torn down and reopened (maybe only it is stuck).
            if (
                link.connected
                and now - link.connected_since > self.timing.min_link_reconnect_period
                and link.ping_pending_since
                and now - link.ping_pending_since > m.down_after / 2
            ):
                link.connected = False
                self._out.disconnects.append(link.addr)
        down = elapsed > m.down_after
        if ri.kind == MASTER:
            # A leader that says it is a replica, or that a newer epoch fenced, is not the leader.
            if ri.role_reported == SLAVE and now - ri.role_reported_time > m.down_after + 2 * self.timing.info_period:
                down = True
            if ri.fenced and now - ri.fenced_since > m.down_after:
                down = True
        if down and not ri.sdown:
            ri.sdown = True
            ri.s_down_since = now
            self._event("+sdown", ri)
        elif not down and ri.sdown:
            ri.sdown = False
            ri.down_cleared_at = now
            self._event("-sdown", ri)

    def _check_odown(self, m: Instance) -> None:
        votes = 0
        if m.sdown:
            votes = 1 + sum(1 for si in m.sentinels.values() if si.master_down)
        if votes and votes >= m.quorum:
            if not m.odown:
                m.odown = True
                m.o_down_since = self.now
                self._event("+odown", m, f"#quorum {votes}/{m.quorum}")
        elif m.odown:
            m.odown = False
            self._event("-odown", m)

    def _ask_master_state(self, m: Instance, forced: bool) -> None:
        now = self.now
        t = self.timing
        for si in m.sentinels.values():
            if now - si.last_master_down_reply_time > 5 * t.ask_period:
                si.master_down = False
                si.leader = ""
            # Ask about a master we think is down, and for votes while electing (also in a
            # planned failover, whose master is up).
            if not m.sdown and m.failover_state != FailoverState.WAIT_START:
                continue
            link = self.links.get(si.addr)
            if link is None or not link.connected:
                continue
            recently = min(now - si.last_master_down_reply_time, now - si.last_ask_sent) < t.ask_period
            if not forced and recently:
                continue
            # While electing, ask for votes in our failover's epoch; else just for their view.
            electing = m.failover_state == FailoverState.WAIT_START
            runid = self.myid if electing else "*"
            epoch = m.failover_epoch if electing else self.current_epoch
            args = ("SENTINEL", "is-master-down-by-addr", m.host, m.port, epoch, runid)
            if self._send(si.addr, ("ask", m.name, si.runid), *args):
                si.last_ask_sent = now

    def _hello_to_seeds(self) -> None:
        known = {si.addr for m in self.masters.values() for si in m.sentinels.values()}
        for addr in self.seeds:
            link = self.links.get(addr)
            if addr in known or link is None or not link.connected:
                continue
            if self.now - link.last_pub <= self.timing.publish_period:
                continue
            for m in self.masters.values():
                payload = self.hello_payload(m, link.local_ip)
                if payload is not None:
                    self._send(addr, ("publish",), "PUBLISH", HELLO_CHANNEL, payload)
            link.last_pub = self.now

    # -- failover: start ---------------------------------------------------------------------

    def _start_failover_if_needed(self, m: Instance) -> bool:
        now = self.now
        if not m.odown or m.in_failover:
            m.start_at = 0.0
            return False
        if now - m.failover_start_time < 2 * m.failover_timeout:
            if m.delay_logged != m.failover_start_time:
                m.delay_logged = m.failover_start_time
                when = (m.failover_start_time + 2 * m.failover_timeout - now) / 1000
                self._event("-failover-delayed", m, f"#next failover in {when:.1f}s", level="log")
            return False
        if not m.start_at:
            m.start_at = now + self.rng.uniform(0, self.timing.start_desync)
        if now < m.start_at:
            return False
        m.start_at = 0.0
        self._start_failover(m, forced=False)
        return True

    def _start_failover(self, m: Instance, forced: bool) -> None:
        now = self.now
        self.current_epoch += 1
        m.failover_epoch = self.current_epoch
        m.failover_state = FailoverState.WAIT_START
        m.failover_state_change_time = now
        m.failover_forced = forced
        m.failover_start_time = now + self.rng.uniform(0, self.timing.max_desync)
        m.sync_paused = m.sync_fenced = False
        m.sync_target = None
        self.failovers_started += 1
        self._persist()  # the epoch is on disk before the vote requests carry it
        self._event("+new-epoch", None, str(self.current_epoch))
        self._event("+try-failover", m)

    def manual_failover(self, name: str, now: float) -> None:
        """SENTINEL FAILOVER: a planned handover; still needs a majority vote for its epoch."""
        self._advance(now)
        m = self.get_master(name)
        if m.in_failover:
            raise SentinelError("INPROG Failover already in progress")
        if self._select_slave(m, fresh_since=None) is None:
            raise SentinelError("NOGOODSLAVE No suitable replica to promote")
        self._start_failover(m, forced=True)
        self._ask_master_state(m, forced=True)

    def _abort_failover(self, m: Instance, reason: str, ri: Instance | None = None) -> None:
        self._event(reason, ri or m)
        state = m.failover_state
        old = self.links.get(m.addr)
        if state == FailoverState.WAIT_SYNC and old is not None and old.connected:
            # Nothing was promoted: give the leader its writes back.
            if m.sync_paused:
                self._send(m.addr, ("unpause",), "CLIENT", "UNPAUSE")
            if m.sync_fenced:
                # We fenced it with our epoch; re-promoting it at that epoch (ours, unused) unfences it.
                self._send(m.addr, ("replicaof",), "REPLICAOF", "NO", "ONE", "EPOCH", m.failover_epoch)
                m.config_epoch = m.failover_epoch
                self._persist()
        m.failover_state = FailoverState.NONE
        m.failover_state_change_time = self.now
        m.failover_forced = False
        m.sync_paused = m.sync_fenced = False
        m.sync_target = None
        if m.promoted_slave is not None:
            m.promoted_slave.promoted = False
            m.promoted_slave = None
        for s in m.slaves.values():
            s.reconf_sent = s.reconf_inprog = s.reconf_done = False
        self.failovers_aborted += 1

    def _set_state(self, m: Instance, state: FailoverState, ri: Instance | None = None) -> None:
        m.failover_state = state
        m.failover_state_change_time = self.now
        self._event(f"+failover-state-{state.text.replace('_', '-')}", ri or m)

    # -- failover: the state machine ----------------------------------------------------------

    def _failover_state_machine(self, m: Instance) -> None:
        state = m.failover_state
        if state == FailoverState.WAIT_START:
            self._failover_wait_start(m)
        elif state == FailoverState.SELECT_SLAVE:
            self._failover_select_slave(m)
        elif state == FailoverState.WAIT_SYNC:
            self._failover_wait_sync(m)
        elif state == FailoverState.SEND_SLAVEOF_NOONE:
            self._failover_send_slaveof_noone(m)
        elif state == FailoverState.WAIT_PROMOTION:
            self._failover_wait_promotion(m)
        elif state == FailoverState.RECONF_SLAVES:
            self._failover_reconf_next_slave(m)
            self._failover_detect_end(m)

    def _failover_wait_start(self, m: Instance) -> None:
        leader = self._get_leader(m, m.failover_epoch)
        if leader != self.myid:
            if self.now - m.failover_state_change_time > min(self.timing.election_timeout, m.failover_timeout):
                self._abort_failover(m, "-failover-abort-not-elected")
            return
        self._event("+elected-leader", m)
        self._set_state(m, FailoverState.SELECT_SLAVE)
        # The candidates' offsets are read again now: only INFO newer than this counts.
        m.select_since = self.now
        for s in m.slaves.values():
            s.info_pending = False
            self._send_info(s)
        self._failover_select_slave(m)

    def _candidates(self, m: Instance) -> list[Instance]:
        """The replicas a failover may promote (sentinelSelectSlave's filter, plus epochs)."""
        now = self.now
        t = self.timing
        # Replicas cut off from the leader long before it went away have old data. "Went away" is
        # when it last answered us (Redis counts from SDOWN, which a TILT can delay).
        mlink = self.links.get(m.addr)
        gone_for = now - mlink.last_avail if mlink is not None and m.sdown else 0
        max_master_down = gone_for + 10 * m.down_after
        validity = 5 * t.ping_period if m.sdown else 3 * t.info_period
        out = []
        stale = []
        for s in m.slaves.values():
            link = self.links.get(s.addr)
            if link is None or not link.connected or self._silent_for(link) > m.down_after:
                continue  # down now (the sdown flag may lag a tick behind a replica just back)
            if now - link.last_avail > 5 * t.ping_period:
                continue
            if s.slave_priority == 0 or s.role_reported != SLAVE:
                continue
            if not s.info_refresh or now - s.info_refresh > validity:
                continue  # never heard from, or not lately
            if s.node_epoch is not None and m.failover_epoch and s.node_epoch > m.failover_epoch:
                continue  # it would refuse a promotion at an older epoch
            if s.slave_master_host and not self._points_to(s, m):
                continue  # following another leader: its offset is in another history
            (stale if s.master_link_down_time > max_master_down else out).append(s)
        # Unlike Redis, a replica cut off for long still counts if it has more data than every
        # fresher one (in one history more offset is simply more acknowledged writes).
        best = max((s.slave_repl_offset for s in out), default=-1)
        out += [s for s in stale if s.slave_repl_offset > best]
        # The leader itself, when it is back but says it is a replica (a restarted node waits to be
        # told, it never makes itself leader): it may well have the most data, and a promotion at a
        # new epoch is the only way it may lead again.
        link = self.links.get(m.addr)
        if (
            link is not None
            and link.connected
            and m.role_reported == SLAVE
            and not m.slave_master_link_up
            and m.slave_priority != 0
            and m.info_refresh
            and now - m.info_refresh <= validity
            and now - link.last_avail <= 5 * t.ping_period
            and not (m.node_epoch is not None and m.failover_epoch and m.node_epoch > m.failover_epoch)
        ):
            out.append(m)
        return out

    def _select_slave(self, m: Instance, fresh_since: float | None) -> Instance | None:
        candidates = self._candidates(m)
        if fresh_since is not None:
            candidates = [s for s in candidates if s.info_asked >= fresh_since]
        if not candidates:
            return None
        # Lowest priority, then most data, then smallest run id (no run id: last).
        candidates.sort(key=lambda s: (s.slave_priority, -s.slave_repl_offset, s.runid or "\xff"))
        return candidates[0]

    def _failover_select_slave(self, m: Instance) -> None:
        candidates = self._candidates(m)
        waiting = [s for s in candidates if s.info_asked < m.select_since]
        if waiting and self.now - m.select_since < self.timing.select_wait:
            for s in waiting:
                if not s.info_pending:
                    self._send_info(s)
            return
        chosen = self._select_slave(m, fresh_since=m.select_since)
        if chosen is None:
            self._abort_failover(m, "-failover-abort-no-good-slave")
            return
        self._event("+selected-slave", chosen)
        chosen.promoted = True
        m.promoted_slave = chosen
        link = self.links.get(m.addr)
        if link is not None and link.connected and not m.sdown and chosen is not m:
            # The leader is up (planned failover): pause its writes and let the replica catch up.
            self._set_state(m, FailoverState.WAIT_SYNC)
            tag = ("pause", m.name, str(m.failover_epoch))
            if self._send(m.addr, tag, "CLIENT", "PAUSE", m.max_write_pause, "WRITE"):
                return
        self._set_state(m, FailoverState.SEND_SLAVEOF_NOONE, chosen)
        self._failover_send_slaveof_noone(m)

    def _on_pause_reply(self, addr: Addr, tag: tuple[str, ...], value: Any) -> None:
        m = self.masters.get(tag[1])
        if m is None or m.addr != addr or m.failover_state != FailoverState.WAIT_SYNC:
            return
        if str(m.failover_epoch) != tag[2]:
            return
        if isinstance(value, Err):
            # No CLIENT PAUSE: fence with our epoch instead (writes refused, not delayed).
            self._send(addr, ("syncfence", m.name, tag[2]), "EPOCH", m.failover_epoch)
            m.sync_fenced = True
            return
        m.sync_paused = True
        self._send_info(m, "sync", m.failover_epoch)

    def _on_sync_fence_reply(self, addr: Addr, tag: tuple[str, ...], value: Any) -> None:
        m = self.masters.get(tag[1])
        if m is None or m.addr != addr or m.failover_state != FailoverState.WAIT_SYNC:
            return
        self._send_info(m, "sync", m.failover_epoch)

    def _failover_wait_sync(self, m: Instance) -> None:
        promoted = m.promoted_slave
        assert promoted is not None
        now = self.now
        if now - m.failover_state_change_time > m.max_write_pause:
            self._abort_failover(m, "-failover-abort-not-in-sync", promoted)
            return
        if m.sync_target is not None and promoted.slave_repl_offset >= m.sync_target:
            self._set_state(m, FailoverState.SEND_SLAVEOF_NOONE, promoted)
            self._failover_send_slaveof_noone(m)
            return
        if m.sync_target is not None and not promoted.info_pending:
            self._send_info(promoted)

    def _failover_send_slaveof_noone(self, m: Instance) -> None:
        promoted = m.promoted_slave
        assert promoted is not None
        link = self.links.get(promoted.addr)
        if link is None or not link.connected:
            if self.now - m.failover_state_change_time > m.failover_timeout:
                self._abort_failover(m, "-failover-abort-slave-timeout", promoted)
            return
        e = m.failover_epoch
        # The old leader hears of the new epoch first (it stops taking writes), then the promotion.
        if promoted is not m:
            self._send(m.addr, ("epoch",), "EPOCH", e)
        if not self._send(promoted.addr, ("replicaof", m.name), "REPLICAOF", "NO", "ONE", "EPOCH", e):
            return
        for s in m.slaves.values():
            if s is not promoted:
                self._send(s.addr, ("epoch",), "EPOCH", e)
        promoted.info_pending = False
        self._send_info(promoted)
        self._set_state(m, FailoverState.WAIT_PROMOTION, promoted)

    def _failover_wait_promotion(self, m: Instance) -> None:
        promoted = m.promoted_slave
        assert promoted is not None
        if self.now - m.failover_state_change_time > m.failover_timeout:
            self._abort_failover(m, "-failover-abort-slave-timeout", promoted)
            return
        if not promoted.info_pending or self.now - promoted.info_sent > self.timing.fast_info_period * 5:
            promoted.info_pending = False
            self._send_info(promoted)

    def _promotion_done(self, m: Instance, promoted: Instance) -> None:
        m.config_epoch = max(m.config_epoch, m.failover_epoch)
        self._persist()
        self._event("+promoted-slave", promoted)
        self._set_state(m, FailoverState.RECONF_SLAVES)
        self._force_hello(m)
        old = self.links.get(m.addr)
        if old is not None and old.connected and promoted is not m:
            # The old leader is reachable (planned failover, or back already): demote it now.
            self._repoint(m, promoted.host, promoted.port, m.failover_epoch, kill_clients=True)
            if m.sync_paused:
                self._send(m.addr, ("unpause",), "CLIENT", "UNPAUSE")
        self._failover_reconf_next_slave(m)
        self._failover_detect_end(m)

    def _failover_reconf_next_slave(self, m: Instance) -> None:
        promoted = m.promoted_slave
        assert promoted is not None
        now = self.now
        in_progress = sum(1 for s in m.slaves.values() if s.reconf_sent or s.reconf_inprog)
        for s in m.slaves.values():
            if in_progress >= m.parallel_syncs:
                break
            if s is promoted or s.reconf_done:
                continue
            if s.reconf_sent and now - s.reconf_sent_time > self.timing.slave_reconf_timeout:
                self._event("-slave-reconf-sent-timeout", s)
                s.reconf_sent = False
                s.reconf_done = True
                continue
            if s.reconf_sent or s.reconf_inprog:
                continue
            link = self.links.get(s.addr)
            if link is None or not link.connected:
                continue
            if self._repoint(s, promoted.host, promoted.port, m.failover_epoch):
                s.reconf_sent = True
                s.reconf_sent_time = now
                self._event("+slave-reconf-sent", s)
                in_progress += 1

    def _failover_detect_end(self, m: Instance) -> None:
        promoted = m.promoted_slave
        assert promoted is not None
        if promoted.sdown:
            return
        pending = [s for s in m.slaves.values() if s is not promoted and not s.reconf_done and not s.sdown]
        timeout = self.now - m.failover_state_change_time > m.failover_timeout
        if timeout:
            self._event("+failover-end-for-timeout", m)
        if pending and not timeout:
            return
        self._event("+failover-end", m)
        self._set_state(m, FailoverState.UPDATE_CONFIG)
        if timeout:
            for s in pending:
                if not s.reconf_sent and self._repoint(s, promoted.host, promoted.port, m.failover_epoch):
                    self._event("+slave-reconf-sent-be", s)

    def _switch_to_promoted(self, m: Instance) -> None:
        promoted = m.promoted_slave
        assert promoted is not None
        self.failovers_finished += 1
        self._switch_master(m, promoted.host, promoted.port)

    def _switch_master(self, m: Instance, host: str, port: int) -> None:
        """The group's leader is now host:port: +switch-master, replicas re-derived, failover reset."""
        old_host, old_port = self.announced_host(m.host), m.port
        new_addr = (host, port)
        old_slaves = list(m.slaves.values())
        new_record = next((s for s in old_slaves if s.addr == new_addr), None)
        old_addr = m.addr
        self._reset_master(m, keep_sentinels=True)
        m.host, m.port = host, port
        kept: dict[str, Instance] = {}
        for s in old_slaves:
            if s.addr == new_addr:
                continue
            s.promoted = s.reconf_sent = s.reconf_inprog = s.reconf_done = False
            kept[s.name] = s
        if old_addr != new_addr:
            old = Instance(SLAVE, f"{old_addr[0]}:{old_addr[1]}", old_addr[0], old_addr[1], m, self.now)
            old.role_reported = MASTER  # until it tells us otherwise
            kept[old.name] = old
        for s in kept.values():
            s.master = m
        m.slaves = kept
        if new_record is not None:
            m.runid = new_record.runid
            m.node_epoch = new_record.node_epoch
        self._reindex()
        self._force_hello(m)
        self._persist()
        self._event("+switch-master", None, f"{m.name} {old_host} {old_port} {self.announced_host(host)} {port}")

    # -- reporting ---------------------------------------------------------------------------

    def usable_sentinels(self, m: Instance) -> int:
        """Ourselves plus the peers we can reach and that are not down (CKQUORUM)."""
        usable = 1
        for si in m.sentinels.values():
            link = self.links.get(si.addr)
            if not si.sdown and link is not None and link.connected:
                usable += 1
        return usable

    def quorum_status(self, m: Instance) -> tuple[int, bool, bool]:
        """(usable sentinels, quorum reachable, majority reachable)."""
        usable = self.usable_sentinels(m)
        voters = len(m.sentinels) + 1
        return usable, usable >= m.quorum, usable >= voters // 2 + 1

    def state_lines(self) -> list[list[str]]:
        """The persistent state as ``sentinel ...`` directive arguments (sentinel.conf syntax)."""
        lines: list[list[str]] = [["myid", self.myid]]
        for m in self.masters.values():
            n = m.name
            # Once promoted, the new leader is what we save (with config-epoch, it is one
            # configuration): a restart in the middle of a failover must not resurrect the old one.
            leader = m.addr
            if m.promoted_slave is not None and m.failover_state >= FailoverState.RECONF_SLAVES:
                leader = m.promoted_slave.addr
            lines.append(["monitor", n, leader[0], str(leader[1]), str(m.quorum)])
            if m.down_after != 30000:
                lines.append(["down-after-milliseconds", n, str(m.down_after)])
            if m.failover_timeout != 180000:
                lines.append(["failover-timeout", n, str(m.failover_timeout)])
            if m.parallel_syncs != 1:
                lines.append(["parallel-syncs", n, str(m.parallel_syncs)])
            if m.auth_pass:
                lines.append(["auth-pass", n, m.auth_pass])
            if m.auth_user:
                lines.append(["auth-user", n, m.auth_user])
            if m.reboot_down_after:
                lines.append(["master-reboot-down-after-period", n, str(m.reboot_down_after)])
            if m.max_write_pause != 5000:
                lines.append(["max-write-pause-milliseconds", n, str(m.max_write_pause)])
            lines.append(["config-epoch", n, str(m.config_epoch)])
            lines.append(["leader-epoch", n, str(m.leader_epoch)])
            for s in m.slaves.values():
                addr = m.addr if s.addr == leader else s.addr  # the old leader is a replica now
                lines.append(["known-replica", n, addr[0], str(addr[1])])
            for si in m.sentinels.values():
                lines.append(["known-sentinel", n, si.host, str(si.port), si.runid])
        lines.append(["current-epoch", str(self.current_epoch)])
        return lines
