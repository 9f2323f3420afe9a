"""Start-up leader discovery: a restarted node asks the sentinels who leads (kvcluster.node.discovery).

The decision rules are unit-tested as a pure function; then real processes on loopback: 3 nodes
and 3 sentinels, a kill -9 of the leader, and its restart with its original arguments (no
replicaof) plus discovery, which must never accept a write; the fallback when no sentinel answers;
the bootstrap rule; and the sentinel's own start-up discovery (a new sentinel with a stale
``--monitor`` address asks its peers).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from helpers import NodeProcess, free_port, wait_until
from kvcluster.node.discovery import (
    Decision,
    Identity,
    KeepAsking,
    Known,
    Unknown,
    Unreachable,
    configured_role,
    decide,
    parse_master_reply,
)
from test_sentinel import DOWN_AFTER, FAILOVER_TIMEOUT, GROUP, Cluster, SentinelProcess

S1, S2, S3 = ("10.0.0.1", 26379), ("10.0.0.2", 26379), ("10.0.0.3", 26379)
ME = Identity(frozenset({"node-0.headless", "10.1.0.10"}), 6379)
OTHER = ("node-1.headless", 6379)
SELF = ("node-0.headless", 6379)


def _decide(answers: list, *, replicaof: tuple[str, int] | None = None, epoch: int = 0, final: bool = False):
    return decide(answers, sentinels=3, me=ME, replicaof=replicaof, epoch=epoch, final=final)


# -- the decision, as a pure function ---------------------------------------------------------------


def test_a_majority_naming_another_node_makes_a_replica_of_it_whatever_replicaof_says() -> None:
    answers = [Known(S1, OTHER, 3), Known(S2, OTHER, 3), Unreachable(S3, "refused")]
    d = _decide(answers, replicaof=None)
    assert isinstance(d, Decision)
    assert d.role == "replica" and d.leader == OTHER and d.source == "sentinels" and d.epoch is None
    assert "2 sentinel(s) name node-1.headless:6379 at config-epoch 3" in d.reason
    assert "2 of 3 sentinel(s) answered" in d.reason


def test_naming_this_node_makes_it_leader_and_a_lost_epoch_is_adopted() -> None:
    d = _decide([Known(S1, SELF, 4), Known(S2, SELF, 4), Known(S3, SELF, 4)], replicaof=OTHER, epoch=4)
    assert isinstance(d, Decision) and d.role == "leader" and d.epoch is None
    # The same answer for a node whose directory has no epoch: it leads at the sentinels' epoch.
    d = _decide([Known(S1, SELF, 4), Known(S2, SELF, 4)], epoch=0)
    assert isinstance(d, Decision) and d.role == "leader" and d.epoch == 4
    assert "was it lost?" in d.reason


def test_this_node_is_recognised_by_any_of_its_addresses() -> None:
    by_ip = ("10.1.0.10", 6379)
    d = _decide([Known(S1, by_ip, 1), Known(S2, by_ip, 1)], epoch=1)
    assert isinstance(d, Decision) and d.role == "leader"
    # A name the sentinels hand out that resolves to one of our addresses.
    named = ("kvc-node-0.kvc-node-headless.ns.svc.cluster.local", 6379)
    answers = [Known(S1, named, 1, leader_ips=frozenset({"10.1.0.10"})), Known(S2, named, 1)]
    d = _decide(answers, epoch=1)
    assert isinstance(d, Decision) and d.role == "leader"
    # Same host, another port: another node.
    d = _decide([Known(S1, ("10.1.0.10", 6380), 1), Known(S2, ("10.1.0.10", 6380), 1)], epoch=1)
    assert isinstance(d, Decision) and d.leader == ("10.1.0.10", 6380)


def test_a_named_leader_that_lost_its_data_waits_for_a_failover_instead_of_emptying_its_replicas() -> None:
    named = [Known(S1, SELF, 2, replicas=2), Known(S2, SELF, 2, replicas=2), Known(S3, SELF, 2, replicas=2)]
    for final in (False, True):  # even past the deadline
        waiting = decide(named, sentinels=3, me=ME, replicaof=None, epoch=2, final=final, has_data=False)
        assert isinstance(waiting, KeepAsking) and "data directory is empty" in waiting.why
    # Once they promoted a replica, it follows it.
    promoted = [Known(S1, OTHER, 3, replicas=2), Known(S2, OTHER, 3), Known(S3, SELF, 2, replicas=2)]
    d = decide(promoted, sentinels=3, me=ME, replicaof=None, epoch=2, final=True, has_data=False)
    assert isinstance(d, Decision) and d.leader == OTHER
    # No replicas to lose (a single node): an empty leader leads.
    alone = [Known(S1, SELF, 0), Known(S2, SELF, 0)]
    d = decide(alone, sentinels=3, me=ME, replicaof=None, epoch=0, final=False, has_data=False)
    assert isinstance(d, Decision) and d.role == "leader"


def test_the_highest_config_epoch_wins_over_stale_sentinels() -> None:
    # One sentinel was partitioned away during the failover and still names the old leader (us).
    answers = [Known(S1, SELF, 2), Known(S2, OTHER, 3), Known(S3, SELF, 2)]
    d = _decide(answers, epoch=2)
    assert isinstance(d, Decision) and d.leader == OTHER


def test_disagreement_at_the_same_epoch_takes_the_majority_or_waits() -> None:
    third = ("node-2.headless", 6379)
    d = _decide([Known(S1, OTHER, 3), Known(S2, third, 3), Known(S3, OTHER, 3)])
    assert isinstance(d, Decision) and d.leader == OTHER
    tie = [Known(S1, SELF, 3), Known(S2, OTHER, 3), Unreachable(S3, "timeout")]
    assert isinstance(_decide(tie), KeepAsking)
    # At the deadline a tie is broken towards following: never a second leader on a guess.
    d = _decide(tie, final=True)
    assert isinstance(d, Decision) and d.leader == OTHER


def test_a_minority_of_answers_waits_for_the_deadline_then_decides() -> None:
    answers = [Known(S1, SELF, 2), Unreachable(S2, "timeout"), Unreachable(S3, "timeout")]
    assert isinstance(_decide(answers, epoch=2), KeepAsking)
    d = _decide(answers, epoch=2, final=True)
    assert isinstance(d, Decision) and d.role == "leader" and "1 of 3 sentinel(s) answered" in d.reason
    # Known answers win over sentinels that do not know the group (a sentinel with no state).
    d = _decide([Unknown(S1), Known(S2, OTHER, 1), Unknown(S3)])
    assert isinstance(d, Decision) and d.leader == OTHER


def test_a_failover_in_progress_is_waited_for_until_it_promotes() -> None:
    pending = [Known(S1, SELF, 2, failover_pending=True), Known(S2, SELF, 2), Known(S3, SELF, 2)]
    assert isinstance(_decide(pending, epoch=2), KeepAsking)
    d = _decide(pending, epoch=2, final=True)
    assert isinstance(d, Decision) and "failover was still in progress" in d.reason
    # Once the replica is promoted SENTINEL MASTER names it at the new epoch (reconf_slaves).
    reply = [b"name", b"mymaster", b"ip", b"node-1.headless", b"port", b"6379", b"config-epoch", b"3"]
    settled = parse_master_reply(S1, [*reply, b"failover-state", b"reconf_slaves"])
    assert settled == Known(S1, OTHER, 3)
    early = parse_master_reply(S1, [*reply, b"failover-state", b"select_slave"])
    assert isinstance(early, Known) and early.failover_pending
    assert isinstance(parse_master_reply(S1, [b"ip"]), Unreachable)
    assert parse_master_reply(S1, {b"ip": b"node-1.headless", b"port": b"6379"}) == Known(S1, OTHER, 0)


def test_nobody_knows_the_group_falls_back_to_the_configured_role_with_the_bootstrap_rule() -> None:
    first = [Unknown(S1), Unknown(S2), Unreachable(S3, "refused")]
    d = _decide(first, replicaof=OTHER)
    assert isinstance(d, Decision) and d.leader == OTHER and d.source == "configuration"
    assert "first creation" in d.reason
    # Identical pod configs: pod 0's replicaof is itself -> leader at epoch 1.
    d = _decide(first, replicaof=SELF)
    assert isinstance(d, Decision) and d.role == "leader" and d.source == "bootstrap" and d.epoch == 1
    d = _decide(first, replicaof=SELF, epoch=5)  # an epoch of its own is kept
    assert isinstance(d, Decision) and d.role == "leader" and d.epoch is None
    d = _decide(first, replicaof=None)
    assert isinstance(d, Decision) and d.role == "leader" and d.source == "configuration"
    # Only one of three answered "unknown": maybe the others know; wait, then fall back.
    lonely = [Unknown(S1), Unreachable(S2, "refused"), Unreachable(S3, "refused")]
    assert isinstance(_decide(lonely, replicaof=OTHER), KeepAsking)
    none = [Unreachable(S1, "refused"), Unreachable(S2, "refused"), Unreachable(S3, "refused")]
    d = _decide(none, replicaof=OTHER, final=True)
    assert isinstance(d, Decision) and d.leader == OTHER and "answered before the deadline" in d.reason
    # The replicaof target recognised by a resolved address.
    d = configured_role(ME, ("pod-0", 6379), {"10.1.0.10"}, 0, "no sentinels")
    assert d.role == "leader" and d.epoch == 1


# -- real processes ----------------------------------------------------------------------------------


def _slow_failure_detection(cluster: Cluster, down_after_ms: int) -> None:
    for s in cluster.sentinels:
        with s.client() as c:
            assert c.sentinel_set(GROUP, "down-after-milliseconds", down_after_ms)


def _discovery_args(cluster: Cluster, timeout_ms: int = 10000) -> tuple[str, ...]:
    sentinels = ",".join(f"127.0.0.1:{s.port}" for s in cluster.sentinels)
    return ("--leader-discovery-sentinels", sentinels, "--leader-discovery-timeout", str(timeout_ms))


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


class WriteProbe(threading.Thread):
    """Hammers a port with SETs from before the process starts listening; records every reply."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.accepted: list[str] = []
        self.refused: list[str] = []
        self.stop_flag = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            try:
                with redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=0.5) as c:
                    while not self.stop_flag.is_set():
                        i += 1
                        try:
                            c.set(f"probe{i}", i)
                            self.accepted.append(f"probe{i}")
                        except redis.ResponseError as e:
                            self.refused.append(str(e))
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.005)

    def finish(self) -> None:
        self.stop_flag.set()
        self.join(10)


def test_restarted_old_leader_comes_back_as_a_replica_and_never_takes_a_write(cluster: Cluster) -> None:
    old = cluster.nodes[0]
    with old.client() as c:
        c.set("before", "failover")
        assert c.wait(2, 5000) == 2  # on the replicas: a failover keeps it (async replication)
    old.kill()
    for s in cluster.sentinels:
        wait_until(lambda s=s: cluster.leader_port(s) != old.port, DOWN_AFTER / 1000 + 30, what="failover")
    new_port = cluster.leader_port()
    # Its original arguments (it was started as a leader: no replicaof) plus discovery.
    old.args = [*old.args, *_discovery_args(cluster)]
    probe = WriteProbe(old.port)
    probe.start()
    try:
        old.start()
        wait_until(lambda: probe.refused, 20, what="the probe reached the restarted node")
        info = cluster.info(old)
        assert info["role"] == "slave" and info["master_port"] == new_port
        wait_until(lambda: cluster.info(old).get("master_link_status") == "up", 20, what="old leader in sync")
    finally:
        probe.finish()
    assert probe.accepted == [], f"the restarted old leader accepted writes: {probe.accepted[:5]}"
    assert all(e.startswith("You can't write against a read only replica") for e in probe.refused), probe.refused[:3]
    assert f"starting as replica of 127.0.0.1:{new_port} (sentinels)" in old.log()
    with old.client() as c:
        assert c.get("before") == b"failover"
    # The sentinels see it as a replica of the new leader: nothing to repair.
    with cluster.sentinels[0].client() as c:
        wait_until(lambda: old.port in [r["port"] for r in c.sentinel_slaves(GROUP)], 20, what="listed as replica")


def test_a_node_the_sentinels_name_leader_starts_as_leader_despite_replicaof(cluster: Cluster) -> None:
    leader = cluster.nodes[0]
    _slow_failure_detection(cluster, 30000)  # no failover while it restarts, however loaded the machine
    leader.stop()
    # Restarted before down-after: the sentinels still name it; its replicaof is ignored.
    leader.args = [*leader.args, "--replicaof", "127.0.0.1", str(cluster.nodes[1].port), *_discovery_args(cluster)]
    leader.start()
    info = cluster.info(leader)
    assert info["role"] == "master", leader.log()
    assert f"sentinel(s) name 127.0.0.1:{leader.port} at config-epoch 0" in leader.log()
    wait_until(lambda: cluster.info(leader).get("connected_slaves") == 2, 20, what="replicas back")


def test_a_leader_restarted_without_its_data_waits_for_the_failover_and_keeps_the_replicas_data(
    tmp_path: Path,
) -> None:
    cluster = Cluster(tmp_path, node_args=("--save", "", "--appendonly", "no"))  # no persistence at all
    try:
        cluster.start()
        leader = cluster.nodes[0]
        with leader.client() as c:
            c.set("acknowledged", "before the crash")
            assert c.wait(2, 5000) == 2
        _slow_failure_detection(cluster, 4000)  # time to restart before they notice, then a failover
        leader.kill()
        # Restarted at once, before the sentinels notice: they still name it, with two replicas.
        leader.args = [*leader.args, *_discovery_args(cluster, timeout_ms=1000)]
        leader.start(wait=False)
        wait_until(lambda: "data directory is empty" in leader.log(), 20, what="the empty leader waits")
        leader.wait_ready(timeout=4 + 30)
        info = cluster.info(leader)
        assert info["role"] == "slave" and info["master_port"] != leader.port
        for s in cluster.sentinels:  # the one it follows is the one they promoted
            wait_until(lambda s=s: cluster.leader_port(s) == info["master_port"], 20, what="sentinels agree")
        wait_until(lambda: cluster.info(leader).get("master_link_status") == "up", 20, what="resynced")
        for node in cluster.nodes:
            with node.client() as c:
                assert c.get("acknowledged") == b"before the crash", node.port
    finally:
        cluster.stop()


def test_no_sentinel_reachable_falls_back_to_the_configured_role_after_the_timeout(tmp_path: Path) -> None:
    leader = NodeProcess(tmp_path / "leader").start()
    dead = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    discovery = ("--leader-discovery-sentinels", *dead, "--leader-discovery-timeout", "1500")
    replica = NodeProcess(tmp_path / "replica", "--replicaof", "127.0.0.1", str(leader.port), *discovery)
    lone = NodeProcess(tmp_path / "lone", *discovery)
    try:
        started = time.monotonic()
        replica.start()
        assert time.monotonic() - started >= 1.5  # it waited for the sentinels first
        assert "no sentinel of 3 answered before the deadline" in replica.log()
        with replica.client() as c:
            wait_until(lambda: c.info("replication")["master_link_status"] == "up", 20, what="replica linked")
        # The residual case: configured as a leader, it leads (docs/guarantees.md).
        lone.start()
        with lone.client() as c:
            assert c.info("replication")["role"] == "master"
            assert c.set("k", "v")
    finally:
        for p in (lone, replica, leader):
            p.stop()


def test_bootstrap_identical_configs_pod_zero_leads_at_epoch_one(tmp_path: Path) -> None:
    """Every node configured `replicaof <node 0>`, as identical pod specs are; sentinels know nothing yet."""
    sentinel_ports = [free_port() for _ in range(3)]
    node_ports = [free_port() for _ in range(3)]
    sentinels = []
    nodes = []
    discovery = ("--leader-discovery-sentinels", *(f"127.0.0.1:{p}" for p in sentinel_ports))
    common = ("--replicaof", "127.0.0.1", str(node_ports[0]), *discovery, "--leader-discovery-timeout", "10000")
    try:
        for i, port in enumerate(sentinel_ports):
            peers = ",".join(f"127.0.0.1:{p}" for p in sentinel_ports if p != port)
            args = ("--sentinel-peers", peers, "--down-after-milliseconds", str(DOWN_AFTER))
            sentinels.append(SentinelProcess(tmp_path / f"s{i}", *args, port=port).start())
        for i, port in enumerate(node_ports):
            nodes.append(NodeProcess(tmp_path / f"n{i}", *common, port=port).start())
        with nodes[0].client() as c:
            info = c.info("replication")
            assert info["role"] == "master" and info["kvcluster_epoch"] == 1
            assert "(bootstrap)" in nodes[0].log() and "first creation" in nodes[0].log()
            wait_until(lambda: c.info("replication")["connected_slaves"] == 2, 20, what="replicas of node 0")
        assert (tmp_path / "n0" / "kvcluster-epoch").read_text().split() == ["1"]
        # Then the sentinels are told what to monitor (as the operator's config does) and agree.
        for s in sentinels:
            with s.client() as c:
                c.sentinel_monitor(GROUP, "127.0.0.1", node_ports[0], 2)
                c.sentinel_set(GROUP, "down-after-milliseconds", DOWN_AFTER)
                c.sentinel_set(GROUP, "failover-timeout", FAILOVER_TIMEOUT)
        for s in sentinels:
            wait_until(lambda s=s: s.master()["num-slaves"] == 2, 30, interval=0.2, what="replicas discovered")
    finally:
        for p in [*nodes, *sentinels]:
            p.stop()


# -- the sentinel's start-up discovery ----------------------------------------------------------------


def test_a_new_sentinel_with_a_stale_monitor_address_reports_the_current_leader_at_once(cluster: Cluster) -> None:
    old = cluster.nodes[0]
    old.kill()
    for s in cluster.sentinels:
        wait_until(lambda s=s: cluster.leader_port(s) != old.port, DOWN_AFTER / 1000 + 30, what="failover")
    new_port = cluster.leader_port()
    epoch = int(cluster.sentinels[0].master()["config-epoch"])
    assert epoch >= 1
    # No saved state, the --monitor address of the original leader (a stale pod spec), the peers.
    peers = ",".join(f"127.0.0.1:{s.port}" for s in cluster.sentinels)
    args = ("--monitor", GROUP, "127.0.0.1", str(old.port), "2", "--sentinel-peers", peers)
    late = SentinelProcess(cluster.root / "late", *args, "--down-after-milliseconds", str(DOWN_AFTER))
    try:
        late.start()
        # Its very first answer names the current leader, at the current epoch.
        with late.client() as c:
            assert c.sentinel_get_master_addr_by_name(GROUP) == ("127.0.0.1", new_port)
            assert int(c.sentinel_master(GROUP)["config-epoch"]) == epoch
            assert c.sentinel_master(GROUP)["quorum"] == 2
        assert f"monitoring it instead of 127.0.0.1:{old.port}" in late.log()
        # It joins the others and learns the replicas from the new leader.
        wait_until(lambda: late.master()["num-other-sentinels"] == 3, 30, interval=0.2, what="late sentinel joined")
        wait_until(lambda: late.master()["num-slaves"] >= 1, 30, interval=0.2, what="replicas learned")
    finally:
        late.stop()


def test_a_new_sentinel_whose_peers_know_nothing_monitors_its_configured_address(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n").start()
    dead_peer = f"127.0.0.1:{free_port()}"
    args = ("--monitor", GROUP, "127.0.0.1", str(node.port), "1", "--sentinel-peers", dead_peer)
    s = SentinelProcess(tmp_path / "s", *args)
    try:
        s.start()
        with s.client() as c:
            assert c.sentinel_get_master_addr_by_name(GROUP) == ("127.0.0.1", node.port)
        assert "No sentinel peer knows mymaster yet" in s.log()
    finally:
        s.stop()
        node.stop()
