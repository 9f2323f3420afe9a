"""Hand-written scenarios for the sans-I/O sentinel core (no sockets, a fake clock).

Each test feeds observations and checks the Ready: what is persisted, sent and published, in
the spirit of etcd raft's scripted interaction tests. The random schedules are in
test_sentinel_sim.py; these pin down individual rules.
"""

from __future__ import annotations

import random

import pytest
from kvcluster.common.config import Directive
from kvcluster.sentinel import state
from kvcluster.sentinel.core import Err, FailoverState, Ready, SentinelCore, SentinelError, Timing
from kvcluster.sentinel.info import parse_info

M = ("10.0.0.1", 6379)
R1 = ("10.0.0.2", 6379)
R2 = ("10.0.0.3", 6379)
PEERS = [("10.0.1.2", 26379), ("10.0.1.3", 26379)]
PEER_IDS = ["b" * 40, "c" * 40]


def info_master(epoch: int = 0, replicas: tuple[tuple[str, int, int], ...] = ()) -> bytes:
    lines = ["# Server", "run_id:" + "1" * 40, "# Replication", "role:master", f"connected_slaves:{len(replicas)}"]
    for i, (host, port, offset) in enumerate(replicas):
        lines.append(f"slave{i}:ip={host},port={port},state=online,offset={offset},lag=0")
    lines += ["master_repl_offset:100", f"kvcluster_epoch:{epoch}", "kvcluster_fenced:0"]
    return "\r\n".join(lines).encode()


def info_replica(offset: int, priority: int = 100, epoch: int = 0, run_id: str = "2" * 40) -> bytes:
    lines = ["# Server", f"run_id:{run_id}", "# Replication", "role:slave", "master_host:10.0.0.1"]
    lines += ["master_port:6379", "master_link_status:down", "master_link_down_since_seconds:1"]
    lines += [f"slave_repl_offset:{offset}", f"slave_priority:{priority}", f"kvcluster_epoch:{epoch}"]
    return "\r\n".join(lines).encode()


class Harness:
    """One core with a fake clock; records everything it asks for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.core = SentinelCore(myid="a" * 40, now=self.now, rng=random.Random(1), timing=Timing(start_desync=0))
        m = self.core.monitor("mymaster", *M, 2, event=False)
        m.down_after = 1000
        m.failover_timeout = 5000
        for addr, runid in zip(PEERS, PEER_IDS, strict=True):
            self.core.add_sentinel(m, *addr, runid, event=False)
        self.core.add_replica(m, *R1, event=False)
        self.core.add_replica(m, *R2, event=False)
        self.core.announce_ip = "10.0.1.1"
        self.ready = Ready()
        self.alive = {M, R1, R2, *PEERS}
        for addr in [M, R1, R2, *PEERS]:
            self.core.link_up(addr, "10.0.1.1", self.now)
        self.take()

    def take(self) -> Ready:
        """The core's Ready, with PINGs to the addresses in ``alive`` answered on the spot."""
        r = self.core.take_ready()
        pings = [msg for msg in r.messages if msg.tag[0] == "ping" and msg.addr in self.alive]
        while pings:
            for msg in pings:
                self.core.on_reply(msg.addr, msg.tag, b"PONG", self.now)
            more = self.core.take_ready()
            r.persist |= more.persist
            r.messages += more.messages
            r.events += more.events
            pings = [msg for msg in more.messages if msg.tag[0] == "ping" and msg.addr in self.alive]
        self.ready = r
        return r

    def advance(self, ms: float, step: float = 100.0) -> list[Ready]:
        out = []
        end = self.now + ms
        while self.now < end:
            self.now = min(end, self.now + step)
            self.core.tick(self.now)
            out.append(self.take())
        return out

    def reply(self, addr: tuple[str, int], tag: tuple[str, ...], value: object) -> Ready:
        self.core.on_reply(addr, tag, value, self.now)
        return self.take()

    def answer(self, readies: list[Ready], addr: tuple[str, int], kind: str, value: object) -> None:
        for r in readies:
            for msg in r.messages:
                if msg.addr == addr and msg.tag[0] == kind:
                    self.reply(addr, msg.tag, value)


def events(readies: list[Ready]) -> list[str]:
    return [e.kind for r in readies for e in r.events]


def test_parse_info_of_a_node_and_of_old_redis() -> None:
    info = parse_info(info_master(3, (("10.0.0.2", 6379, 10),)).decode())
    assert info.role == "master" and info.epoch == 3 and info.replicas[0].port == 6379
    old = parse_info("role:master\r\nslave0:10.0.0.5,6380,online\r\nkvcluster_epoch:x\r\n")
    assert (old.replicas[0].host, old.replicas[0].port) == ("10.0.0.5", 6380) and old.epoch == 0
    assert parse_info("garbage\r\n:::\r\nrole").role == ""


def test_vote_once_per_epoch_and_persist_before_reply() -> None:
    h = Harness()
    core = h.core
    reply = core.is_master_down_by_addr(*M, 5, "x" * 40, h.now)
    r = h.take()
    assert reply == [0, b"x" * 40, 5]
    assert r.persist  # the vote is durable before the shell writes the reply
    assert core.current_epoch == 5 and core.masters["mymaster"].leader_epoch == 5
    # A second candidate in the same epoch gets the first one's name back, not our vote.
    assert core.is_master_down_by_addr(*M, 5, "y" * 40, h.now) == [0, b"x" * 40, 5]
    # An older epoch cannot get a vote either.
    assert core.is_master_down_by_addr(*M, 4, "y" * 40, h.now)[1] == b"x" * 40
    assert core.is_master_down_by_addr(*M, 6, "y" * 40, h.now) == [0, b"y" * 40, 6]


def test_state_lines_round_trip_through_sentinel_conf_directives() -> None:
    h = Harness()
    h.core.current_epoch = 7
    h.core.masters["mymaster"].config_epoch = 6
    lines = h.core.state_lines()
    fresh = SentinelCore(now=0)
    state.apply_directives(fresh, [Directive("sentinel", a, "x", i) for i, a in enumerate(lines)], [])
    assert fresh.state_lines() == lines
    assert fresh.myid == "a" * 40 and fresh.current_epoch == 7


def test_failover_elects_chooses_the_most_advanced_and_fences() -> None:
    h = Harness()
    core = h.core
    m = core.masters["mymaster"]
    for addr in (R1, R2):
        h.reply(addr, ("info", "", "0", "0"), info_replica(80))
    # The leader stops answering.
    h.alive.discard(M)
    core.link_down(M, h.now)
    readies = h.advance(1200)
    assert "+sdown" in events(readies)
    # Peers agree it is down: ODOWN, then a failover in epoch 1, asking for votes.
    h.answer(readies, PEERS[0], "ask", [1, b"*", 0])
    h.answer(readies, PEERS[1], "ask", [1, b"*", 0])
    readies = h.advance(200)
    assert m.odown and m.failover_state == FailoverState.WAIT_START
    asks = [msg for r in readies for msg in r.messages if msg.tag[0] == "ask" and msg.args[-1] == core.myid]
    assert asks and any(r.persist for r in readies)  # the new epoch was saved before asking
    for msg in asks:
        h.reply(msg.addr, msg.tag, [1, core.myid.encode(), m.failover_epoch])
    readies = h.advance(100)
    assert m.failover_state == FailoverState.SELECT_SLAVE
    # Fresh INFO after the election: R2 has more data.
    h.answer(readies, R1, "info", info_replica(90, run_id="2" * 40))
    h.answer(readies, R2, "info", info_replica(95, run_id="3" * 40))
    readies = h.advance(100)
    sent = [msg for r in readies for msg in r.messages]
    promote = [msg for msg in sent if msg.args[:3] == ("REPLICAOF", "NO", "ONE")]
    assert [p.addr for p in promote] == [R2] and promote[0].args[-1] == str(m.failover_epoch)
    assert any(msg.addr == R1 and msg.args == ("EPOCH", str(m.failover_epoch)) for msg in sent)
    # R2 reports the leader role at the new epoch: others are repointed, clients sent to R2.
    h.reply(R2, ("info", "", "0", "0"), info_master(m.failover_epoch))
    assert core.current_master_addr(m) == R2 and m.config_epoch == m.failover_epoch
    readies = h.advance(100)
    repoint = [msg for r in [h.ready, *readies] for msg in r.messages if msg.args[0] == "REPLICAOF"]
    assert all(msg.args[-1] == str(m.failover_epoch) for msg in repoint)


def test_no_majority_no_failover() -> None:
    h = Harness()
    m = h.core.masters["mymaster"]
    m.quorum = 1  # even a quorum of one cannot authorize alone: the majority of 3 is 2
    h.alive -= {M, *PEERS}
    h.core.link_down(M, h.now)
    for peer in PEERS:
        h.core.link_down(peer, h.now)
    readies = h.advance(20_000)
    kinds = events(readies)
    assert "+odown" in kinds and "+try-failover" in kinds
    assert "-failover-abort-not-elected" in kinds and "+elected-leader" not in kinds
    assert not any(msg.args[:3] == ("REPLICAOF", "NO", "ONE") for r in readies for msg in r.messages)


def test_tilt_after_a_stall_stops_acting_but_keeps_answering() -> None:
    h = Harness()
    core = h.core
    h.advance(500)
    h.alive.discard(M)
    h.core.link_down(M, h.now + 10)
    h.now += 5000  # the process did not run for 5 s
    core.tick(h.now)
    r = h.take()
    assert core.tilt and "+tilt" in [e.kind for e in r.events]
    readies = h.advance(3000)
    assert "+sdown" not in events(readies)  # no acting in TILT
    assert core.is_master_down_by_addr(*M, 0, "*", h.now)[0] == 0
    readies = h.advance(core.timing.tilt_period)
    assert "-tilt" in events(readies) and "+sdown" in events(readies)


def test_hello_adds_a_peer_raises_the_epoch_and_switches_on_a_newer_config() -> None:
    h = Harness()
    core = h.core
    core.on_hello(f"10.0.1.9,26379,{'d' * 40},9,mymaster,10.0.0.1,6379,0", h.now)
    r = h.take()
    assert "+sentinel" in [e.kind for e in r.events] and core.current_epoch == 9 and r.persist
    core.on_hello(f"10.0.1.9,26379,{'d' * 40},9,mymaster,10.0.0.3,6379,4", h.now)
    r = h.take()
    m = core.masters["mymaster"]
    assert m.addr == R2 and m.config_epoch == 4
    assert [e.text for e in r.events if e.kind == "+switch-master"] == ["mymaster 10.0.0.1 6379 10.0.0.3 6379"]
    assert "10.0.0.1:6379" in m.slaves  # the old leader is a replica record now
    core.on_hello("not,a,hello", h.now)
    assert not h.take()


def test_returning_old_leader_is_fenced_first_and_demoted() -> None:
    h = Harness()
    core = h.core
    core.on_hello(f"10.0.1.2,26379,{PEER_IDS[0]},3,mymaster,10.0.0.3,6379,3", h.now)
    h.take()
    h.reply(R2, ("info", "", "0", "0"), info_master(epoch=3))  # the new leader looks sane
    # The old leader's link opens: EPOCH goes first, then it is told to follow at once.
    core.link_down(M, h.now)
    core.link_up(M, "10.0.1.1", h.now)
    r = h.take()
    assert r.messages[0].args == ("EPOCH", "3")
    h.reply(M, r.messages[-1].tag, info_master(epoch=2))
    sent = [msg.args for msg in h.ready.messages if msg.addr == M]
    assert ("REPLICAOF", "10.0.0.3", "6379", "EPOCH", "3") in sent
    assert ("CLIENT", "KILL", "TYPE", "normal") in sent


def test_manual_failover_errors() -> None:
    h = Harness()
    with pytest.raises(SentinelError, match="NOGOODSLAVE"):
        h.core.manual_failover("mymaster", h.now)  # no replica INFO yet
    with pytest.raises(SentinelError, match="No such master"):
        h.core.manual_failover("nope", h.now)
    for addr in (R1, R2):
        h.reply(addr, ("info", "", "0", "0"), info_replica(10))
    h.core.manual_failover("mymaster", h.now)
    with pytest.raises(SentinelError, match="INPROG"):
        h.core.manual_failover("mymaster", h.now)


def test_planned_failover_pauses_then_waits_for_the_replica() -> None:
    h = Harness()
    core = h.core
    m = core.masters["mymaster"]
    h.reply(M, ("info", "", "0", "0"), info_master(0, (("10.0.0.2", 6379, 50), ("10.0.0.3", 6379, 50))))
    for addr in (R1, R2):
        h.reply(addr, ("info", "", "0", "0"), info_replica(50))
    core.manual_failover("mymaster", h.now)
    asks = [msg for msg in h.take().messages if msg.tag[0] == "ask"]
    for msg in asks:
        h.reply(msg.addr, msg.tag, [0, core.myid.encode(), m.failover_epoch])
    readies = h.advance(100)
    h.answer(readies, R1, "info", info_replica(60))
    h.answer(readies, R2, "info", info_replica(50))
    readies = h.advance(100)
    pause = [msg for r in readies for msg in r.messages if msg.tag[0] == "pause"]
    assert pause and pause[0].args == ("CLIENT", "PAUSE", "5000", "WRITE")
    assert m.failover_state == FailoverState.WAIT_SYNC
    h.reply(M, pause[0].tag, b"OK")
    sync_info = [msg for msg in h.ready.messages if msg.tag[:2] == ("info", "sync")]
    h.reply(M, sync_info[0].tag, info_master(0).replace(b"master_repl_offset:100", b"master_repl_offset:70"))
    readies = h.advance(200)
    h.answer(readies, R1, "info", info_replica(65))
    assert m.failover_state == FailoverState.WAIT_SYNC  # 65 < 70: not yet
    readies = h.advance(200)
    h.answer(readies, R1, "info", info_replica(70))
    readies = h.advance(100)
    assert any(msg.args[:3] == ("REPLICAOF", "NO", "ONE") and msg.addr == R1 for r in readies for msg in r.messages)


def test_pause_unsupported_falls_back_to_fencing_and_abort_unfences() -> None:
    h = Harness()
    core = h.core
    m = core.masters["mymaster"]
    for addr in (R1, R2):
        h.reply(addr, ("info", "", "0", "0"), info_replica(50))
    core.manual_failover("mymaster", h.now)
    for msg in h.take().messages:
        if msg.tag[0] == "ask":
            h.reply(msg.addr, msg.tag, [0, core.myid.encode(), m.failover_epoch])
    readies = h.advance(100)
    h.answer(readies, R1, "info", info_replica(50))
    h.answer(readies, R2, "info", info_replica(50))
    readies = h.advance(100)
    pause = next(msg for r in readies for msg in r.messages if msg.tag[0] == "pause")
    h.reply(M, pause.tag, Err("ERR unknown subcommand 'pause'"))
    assert ("EPOCH", str(m.failover_epoch)) in [msg.args for msg in h.ready.messages]
    # The sync never completes (no reply to the INFO): abort after the bound, unfence the leader.
    readies = h.advance(6000)
    assert "-failover-abort-not-in-sync" in events(readies)
    sent = [msg.args for r in readies for msg in r.messages if msg.addr == M]
    assert ("REPLICAOF", "NO", "ONE", "EPOCH", str(m.failover_epoch)) in sent
    assert m.config_epoch == m.failover_epoch
