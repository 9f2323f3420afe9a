"""Real processes on loopback: 3 sentinels, 1 leader, 2 replicas, driven by redis-py and redis-cli.

Every process runs on a free port in a temporary directory and is stopped by its PID. Timings are
never asserted tightly (the machine is shared): conditions are polled with deadlines, and how
long a failover took is printed (bench/sentinel_failover.py measures it properly).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.sentinel
from helpers import KVCLUSTER, NodeProcess, free_port, wait_until

GROUP = "mymaster"
DOWN_AFTER = 1000
FAILOVER_TIMEOUT = 6000


class SentinelProcess(NodeProcess):
    """A real ``kvcluster sentinel`` process (same life cycle as a node)."""

    def __init__(self, directory: Path, *args: str, port: int | None = None, config: Path | None = None):
        super().__init__(directory, *args, port=port)
        self.config = config
        self.log_path = self.dir / f"sentinel-{self.port}.log"

    def start(self, wait: bool = True) -> SentinelProcess:
        cmd = [*KVCLUSTER, "sentinel"]
        if self.config is not None:
            cmd.append(str(self.config))
        cmd += self.args
        if self.config is None:
            cmd += ["--port", str(self.port), "--dir", str(self.dir)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)
        if wait:
            self.wait_ready()
        return self

    def client(self, **kwargs: Any) -> redis.Redis:
        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("decode_responses", True)
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)

    def master(self) -> dict[str, Any]:
        with self.client() as c:
            return c.sentinel_master(GROUP)


class Cluster:
    """1 leader + 2 replicas + 3 sentinels, started in order so discovery is immediate."""

    def __init__(self, root: Path, node_args: tuple[str, ...] = (), sentinel_configs: bool = False):
        self.root = root
        self.node_args = node_args
        self.nodes: list[NodeProcess] = []
        self.sentinels: list[SentinelProcess] = []
        self.sentinel_configs = sentinel_configs

    def start(self) -> Cluster:
        leader = NodeProcess(self.root / "n0", *self.node_args).start()
        self.nodes.append(leader)
        for i in (1, 2):
            args = (*self.node_args, "--replicaof", "127.0.0.1", str(leader.port))
            self.nodes.append(NodeProcess(self.root / f"n{i}", *args).start())
        wait_until(lambda: self.info(leader).get("connected_slaves") == 2, 20, what="replicas online")
        for i in range(3):
            self.sentinels.append(self.new_sentinel(i))
        for s in self.sentinels:
            s.start(wait=False)
        for s in self.sentinels:
            s.wait_ready()
        self.wait_discovered()
        return self

    def new_sentinel(self, i: int) -> SentinelProcess:
        d = self.root / f"s{i}"
        d.mkdir(parents=True, exist_ok=True)
        leader = self.nodes[0]
        if self.sentinel_configs:
            port = free_port()
            conf = d / "sentinel.conf"
            conf.write_text(
                "# a Redis sentinel.conf\n"
                f"port {port}\n"
                f'dir "{d}"\n'
                f"sentinel monitor {GROUP} 127.0.0.1 {leader.port} 2\n"
                f"sentinel down-after-milliseconds {GROUP} {DOWN_AFTER}\n"
                "# how long a failover may take\n"
                f"sentinel failover-timeout {GROUP} {FAILOVER_TIMEOUT}\n"
                f"sentinel parallel-syncs {GROUP} 1\n"
                "sentinel deny-scripts-reconfig yes\n"
            )
            return SentinelProcess(d, port=port, config=conf)
        args = (
            "--monitor",
            GROUP,
            "127.0.0.1",
            str(leader.port),
            "2",
            "--down-after-milliseconds",
            str(DOWN_AFTER),
            "--failover-timeout",
            str(FAILOVER_TIMEOUT),
        )
        return SentinelProcess(d, *args)

    def wait_discovered(self, sentinels: list[SentinelProcess] | None = None) -> None:
        def done() -> bool:
            for s in sentinels or self.sentinels:
                m = s.master()
                if m["num-slaves"] != 2 or m["num-other-sentinels"] != 2:
                    return False
            return True

        wait_until(done, 30, interval=0.2, what="sentinels discovered replicas and each other")

    @staticmethod
    def info(node: NodeProcess) -> dict[str, Any]:
        with node.client(socket_timeout=2) as c:
            return c.info("replication")

    def node_at(self, port: int) -> NodeProcess:
        return next(n for n in self.nodes if n.port == port)

    def leader_port(self, sentinel: SentinelProcess | None = None) -> int:
        with (sentinel or self.sentinels[0]).client() as c:
            return int(c.sentinel_get_master_addr_by_name(GROUP)[1])

    def sentinel_client(self, **kwargs: Any) -> redis.sentinel.Sentinel:
        return redis.sentinel.Sentinel(
            [("127.0.0.1", s.port) for s in self.sentinels], socket_timeout=1.0, sentinel_kwargs={"socket_timeout": 1}
        )

    def stop(self) -> None:
        for p in [*self.sentinels, *self.nodes]:
            if p.proc is not None and p.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.proc.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
            p.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-3000:]}" for p in [*self.sentinels, *self.nodes])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


class Writer(threading.Thread):
    """Writes through ``master_for`` in a loop; remembers every write the leader acknowledged."""

    def __init__(self, cluster: Cluster):
        super().__init__(daemon=True)
        self.sentinel = cluster.sentinel_client()
        self.master = self.sentinel.master_for(GROUP, socket_timeout=1.0)
        self.acked: list[int] = []
        self.errors: list[str] = []
        self.stop_flag = threading.Event()
        self.last_ok = time.monotonic()
        self.ports: list[int] = []

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            try:
                self.master.set(f"k{i}", i)
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError) as e:
                self.errors.append(type(e).__name__ + ": " + str(e)[:80])
                time.sleep(0.05)
                continue
            self.acked.append(i)
            self.last_ok = time.monotonic()
            port = self.master.connection_pool.get_master_address()[1]
            if not self.ports or self.ports[-1] != port:
                self.ports.append(port)
            time.sleep(0.005)

    def writes_after(self, t: float, timeout: float = 30.0) -> None:
        wait_until(lambda: self.last_ok > t, timeout, interval=0.05, what="writes through master_for resume")

    def finish(self) -> None:
        self.stop_flag.set()
        self.join(10)
        self.sentinel.close()


# -- discovery and Redis-shaped replies --------------------------------------------------------


def test_discovery_and_redis_shaped_replies(cluster: Cluster, redis_cli: str) -> None:
    s = cluster.sentinels[0]
    leader = cluster.nodes[0]
    out = subprocess.run(
        [redis_cli, "-p", str(s.port), "SENTINEL", "get-master-addr-by-name", GROUP],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert out.stdout.split() == ["127.0.0.1", str(leader.port)]
    out = subprocess.run(
        [redis_cli, "-p", str(s.port), "SENTINEL", "replicas", GROUP], capture_output=True, text=True, timeout=10
    )
    words = out.stdout.split()
    for field in ("name", "ip", "port", "runid", "flags", "master-link-status", "slave-repl-offset", "slave-priority"):
        assert field in words
    assert words.count("slave") >= 2
    with s.client() as c:
        masters = c.sentinel_masters()
        state = masters[GROUP]
        assert state["is_master"] and not state["is_sdown"] and not state["is_odown"]
        assert state["port"] == leader.port and state["quorum"] == 2 and state["num-other-sentinels"] == 2
        replicas = c.sentinel_slaves(GROUP)
        assert sorted(r["port"] for r in replicas) == sorted(n.port for n in cluster.nodes[1:])
        assert all(r["is_slave"] and r["master-link-status"] == "ok" for r in replicas)
        sentinels = c.sentinel_sentinels(GROUP)
        assert sorted(x["port"] for x in sentinels) == sorted(x.port for x in cluster.sentinels[1:])
        assert c.execute_command("SENTINEL", "CKQUORUM", GROUP).startswith("OK 3 usable Sentinels")
        assert len(c.execute_command("SENTINEL", "MYID")) == 40
        info = c.info("sentinel")
        assert info["sentinel_masters"] == 1 and info["sentinel_tilt"] == 0
        assert info["master0"]["status"] == "ok" and info["master0"]["sentinels"] == 3
        assert c.ping()
        assert c.execute_command("ROLE") == ["sentinel", [GROUP]]
        with pytest.raises(redis.ResponseError, match="No such master with that name"):
            c.sentinel_master("nope")
        assert c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "nope") is None
        down, leader_id, epoch = c.execute_command(
            "SENTINEL", "IS-MASTER-DOWN-BY-ADDR", "127.0.0.1", leader.port, 0, "*"
        )
        assert (down, leader_id, epoch) == (0, "*", 0)
    # RESP3 clients get maps.
    with s.client(protocol=3) as c3:
        assert c3.sentinel_master(GROUP)["port"] == leader.port
    # redis-py's own discovery.
    sentinel = cluster.sentinel_client()
    try:
        assert sentinel.discover_master(GROUP) == ("127.0.0.1", leader.port)
        assert sorted(p for _, p in sentinel.discover_slaves(GROUP)) == sorted(n.port for n in cluster.nodes[1:])
        master = sentinel.master_for(GROUP, socket_timeout=2)
        master.set("hello", "world")
        assert master.get("hello") == b"world"
    finally:
        sentinel.close()


def test_commands_that_change_the_configuration(cluster: Cluster) -> None:
    s = cluster.sentinels[0]
    other = cluster.nodes[1]
    with s.client() as c:
        assert c.sentinel_set(GROUP, "down-after-milliseconds", 1500)
        assert c.sentinel_master(GROUP)["down-after-milliseconds"] == 1500
        with pytest.raises(redis.ResponseError, match="Invalid argument"):
            c.sentinel_set(GROUP, "parallel-syncs", "zero")
        assert c.execute_command("SENTINEL", "CONFIG", "GET", "announce-*") == {
            "announce-ip": "",
            "announce-port": "0",
            "announce-hostnames": "no",
        }
        assert c.sentinel_monitor("other", "127.0.0.1", other.port, 1)
        with pytest.raises(redis.ResponseError, match="Duplicated master name"):
            c.sentinel_monitor("other", "127.0.0.1", other.port, 1)
        with pytest.raises(redis.ResponseError, match="Invalid IP address or hostname"):
            c.sentinel_monitor("third", "no-such-host.invalid", 6379, 1)
        assert "other" in c.sentinel_masters()
        assert c.sentinel_remove("other")
        assert "other" not in c.sentinel_masters()
        assert c.execute_command("SENTINEL", "FLUSHCONFIG")
    state = (s.dir / "sentinel-state.conf").read_text()
    assert f"sentinel down-after-milliseconds {GROUP} 1500" in state
    assert "sentinel monitor other" not in state


# -- failovers ------------------------------------------------------------------------------------


def test_kill9_leader_client_keeps_writing(cluster: Cluster) -> None:
    events = cluster.sentinels[1].client().pubsub()
    events.subscribe("+switch-master", "+odown", "+elected-leader")
    writer = Writer(cluster)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) > 20, 20, what="writes before the failure")
        old = cluster.nodes[0]
        killed_at = time.monotonic()
        old.kill()
        wait_until(lambda: writer.ports[-1] != old.port, DOWN_AFTER / 1000 + 20, interval=0.05, what="new leader")
        took = writer.last_ok - killed_at
        print(f"writes resumed on the new leader {took:.2f} s after kill -9 (down-after {DOWN_AFTER} ms)")
        new_port = writer.ports[-1]
        info = cluster.info(cluster.node_at(new_port))
        assert info["role"] == "master" and info["kvcluster_epoch"] >= 1
        # Every sentinel agrees, and the other replica follows the new leader.
        for s in cluster.sentinels:
            wait_until(lambda s=s: cluster.leader_port(s) == new_port, 20, what="all sentinels switched")
        other = next(n for n in cluster.nodes[1:] if n.port != new_port)
        wait_until(lambda: cluster.info(other).get("master_port") == new_port, 20, what="other replica repointed")
        seen = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "+switch-master" not in seen:
            msg = events.get_message(timeout=1.0)
            if msg and msg["type"] == "message":
                seen.append(msg["channel"])
                if msg["channel"] == "+switch-master":
                    parts = msg["data"].split()
                    assert parts == [GROUP, "127.0.0.1", str(old.port), "127.0.0.1", str(new_port)]
        assert "+switch-master" in seen
        # The old leader comes back: it is told the new epoch and rejoins as a replica.
        old.start()
        wait_until(lambda: cluster.info(old).get("master_port") == new_port, 20, what="old leader rejoined")
        assert cluster.info(old)["role"] == "slave"
        wait_until(lambda: cluster.info(old).get("master_link_status") == "up", 20, what="old leader in sync")
    finally:
        writer.finish()
        events.close()


@pytest.fixture
def semisync_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, node_args=("--durability", "semi-sync", "--semi-sync-timeout", "2000"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_sigstop_leader_is_fenced_and_rejoins_semisync_loses_nothing(semisync_cluster: Cluster) -> None:
    cluster = semisync_cluster
    writer = Writer(cluster)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) > 20, 20, what="writes before the stall")
        old = cluster.nodes[0]
        assert old.proc is not None
        stopped_at = time.monotonic()
        os.kill(old.proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: cluster.leader_port() != old.port, DOWN_AFTER / 1000 + 20, what="failover")
            writer.writes_after(time.monotonic(), timeout=20)
            print(f"failover {time.monotonic() - stopped_at:.2f} s after SIGSTOP")
        finally:
            os.kill(old.proc.pid, signal.SIGCONT)
        new_port = cluster.leader_port()
        # The old leader is fenced at once, then repointed: never a second writable leader.
        wait_until(lambda: cluster.info(old).get("role") == "slave", 20, what="old leader demoted")
        wait_until(lambda: cluster.info(old).get("master_port") == new_port, 20, what="old leader follows")
        with old.client(socket_timeout=2) as c, pytest.raises(redis.ReadOnlyError):
            c.set("split-brain", 1)
        time.sleep(0.2)  # a few more acknowledged writes on the new leader
    finally:
        writer.finish()
    acked = set(writer.acked)
    with cluster.node_at(cluster.leader_port()).client() as c:
        keys = [f"k{i}" for i in sorted(acked)]
        values = c.mget(keys)
    lost = [k for k, v in zip(keys, values, strict=True) if v is None]
    assert not lost, f"{len(lost)} acknowledged writes lost: {lost[:10]}"


def test_manual_failover_loses_no_acknowledged_write(cluster: Cluster) -> None:
    writer = Writer(cluster)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) > 50, 20, what="writes before the handover")
        old_port = cluster.leader_port()
        with cluster.sentinels[2].client() as c:
            assert c.sentinel_failover(GROUP)
            with pytest.raises(redis.ResponseError, match="INPROG"):
                c.sentinel_failover(GROUP)
        wait_until(lambda: cluster.leader_port() != old_port, 20, what="planned failover")
        new_port = cluster.leader_port()
        writer.writes_after(time.monotonic(), timeout=20)
        old = cluster.node_at(old_port)
        wait_until(lambda: cluster.info(old).get("master_port") == new_port, 20, what="old leader follows")
        for s in cluster.sentinels:
            wait_until(lambda s=s: cluster.leader_port(s) == new_port, 20, what="all sentinels switched")
    finally:
        writer.finish()
    with cluster.node_at(cluster.leader_port()).client() as c:
        keys = [f"k{i}" for i in writer.acked]
        values = c.mget(keys)
    lost = [k for k, v in zip(keys, values, strict=True) if v is None]
    assert not lost, f"{len(lost)} acknowledged writes lost in a planned failover: {lost[:10]}"
    # Writes were paused (CLIENT PAUSE WRITE), not refused: at most the reconnection shows.
    assert not [e for e in writer.errors if "FENCED" in e], writer.errors


def test_client_pause_postpones_writes_not_reads(tmp_path: Path) -> None:
    """The node-side CLIENT PAUSE the planned failover uses."""
    with NodeProcess(tmp_path / "n") as node, node.client() as c, node.client() as other:
        assert c.execute_command("CLIENT", "PAUSE", 3000, "WRITE")
        done = threading.Event()

        def write() -> None:
            other.set("k", "v")
            done.set()

        t = threading.Thread(target=write, daemon=True)
        t.start()
        assert c.get("k") is None  # reads go on
        assert not done.wait(0.3)  # the write waits
        assert c.execute_command("CLIENT", "UNPAUSE")
        assert done.wait(5)
        assert c.get("k") == b"v"
        with pytest.raises(redis.ResponseError, match="timeout is negative"):
            c.execute_command("CLIENT", "PAUSE", -1)
        with pytest.raises(redis.ResponseError, match="syntax error"):
            c.execute_command("CLIENT", "PAUSE", 10, "SOME")


# -- what must never cause a failover ----------------------------------------------------------


def _no_failover_for(cluster: Cluster, sentinel: SentinelProcess, seconds: float, leader_port: int) -> None:
    """Watch for ``seconds``: the leader stays, no failover starts (an absence: a bounded watch)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        m = sentinel.master()
        assert m["port"] == leader_port, "the leader changed"
        assert m.get("failover-state") is None, "a failover started"
        time.sleep(0.2)


def test_killing_sentinels_never_fails_over_and_one_left_cannot(cluster: Cluster) -> None:
    leader = cluster.nodes[0]
    s0, s1, s2 = cluster.sentinels
    s1.kill()
    with s0.client() as c:
        wait_until(lambda: any(x["is_sdown"] for x in c.sentinel_sentinels(GROUP)), 20, what="dead sentinel seen down")
        assert c.execute_command("SENTINEL", "CKQUORUM", GROUP).startswith("OK 2 usable Sentinels")
    _no_failover_for(cluster, s0, 3 * DOWN_AFTER / 1000, leader.port)
    s2.kill()
    with s0.client() as c:
        wait_until(lambda: sum(x["is_sdown"] for x in c.sentinel_sentinels(GROUP)) == 2, 20, what="two sentinels down")
        with pytest.raises(redis.ResponseError, match="NOQUORUM 1 usable Sentinels"):
            c.execute_command("SENTINEL", "CKQUORUM", GROUP)
        assert "kvcluster_master0" in c.info("sentinel")
    _no_failover_for(cluster, s0, 3 * DOWN_AFTER / 1000, leader.port)
    # With one sentinel left, even a dead leader is not failed over: no majority.
    leader.kill()
    with s0.client() as c:
        wait_until(lambda: c.sentinel_master(GROUP)["is_sdown"], 20, what="leader seen down")
        info = c.info("sentinel")
        assert info["master0"]["status"] == "sdown"
        assert info["kvcluster_master0"]["usable_sentinels"] == 1
        assert info["kvcluster_master0"]["majority_reachable"] == 0
    deadline = time.monotonic() + 4 * DOWN_AFTER / 1000
    while time.monotonic() < deadline:
        m = s0.master()
        assert m["port"] == leader.port and not m["is_odown"]
        time.sleep(0.2)
    for n in cluster.nodes[1:]:
        assert cluster.info(n)["role"] == "slave"


# -- state and configuration files ---------------------------------------------------------------


@pytest.fixture
def conf_cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path, sentinel_configs=True)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_sentinel_conf_is_read_and_rewritten_and_state_survives_restart(conf_cluster: Cluster) -> None:
    cluster = conf_cluster
    s = cluster.sentinels[0]
    assert s.config is not None
    text = s.config.read_text()
    assert "# a Redis sentinel.conf" in text and "# how long a failover may take" in text
    assert "sentinel myid " in text and "sentinel current-epoch 0" in text
    assert text.count(f"sentinel known-replica {GROUP} 127.0.0.1") == 2
    assert text.count(f"sentinel known-sentinel {GROUP} 127.0.0.1") == 2
    with s.client() as c:
        myid = c.execute_command("SENTINEL", "MYID")
    # A failover: every sentinel rewrites its file with the new leader and epoch.
    with cluster.sentinels[1].client() as c:
        c.sentinel_failover(GROUP)
    old_port = cluster.nodes[0].port
    for x in cluster.sentinels:
        wait_until(lambda x=x: cluster.leader_port(x) != old_port, 30, what="failover seen by all")
    new_port = cluster.leader_port()
    wait_until(lambda: f"sentinel monitor {GROUP} 127.0.0.1 {new_port} 2" in s.config.read_text(), 10)
    epoch = int(s.master()["config-epoch"])
    assert epoch >= 1
    # Restart: same id, epoch, leader, peers and replicas, before any hello arrives.
    s.stop()
    s.start()
    with s.client() as c:
        assert c.execute_command("SENTINEL", "MYID") == myid
        m = c.sentinel_master(GROUP)
        assert m["port"] == new_port and m["config-epoch"] == epoch
        assert m["num-other-sentinels"] == 2 and m["num-slaves"] == 2
        assert c.info("sentinel")["kvcluster_current_epoch"] >= epoch
    text = s.config.read_text()
    assert "# a Redis sentinel.conf" in text
    assert f"sentinel known-replica {GROUP} 127.0.0.1 {old_port}" in text


def test_bad_sentinel_conf_is_refused_with_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "sentinel.conf"
    conf.write_text("port 0\nsentinel monitor mymaster 127.0.0.1 6379 2\nsentinel bogus-directive x\n")
    out = subprocess.run([*KVCLUSTER, "sentinel", str(conf), "--check-config"], capture_output=True, text=True)
    assert out.returncode == 1
    assert f"{conf}:3" in out.stderr and "bogus-directive" in out.stderr
    conf.write_text("port 0\nsentinel down-after-milliseconds nosuch 1000\n")
    out = subprocess.run([*KVCLUSTER, "sentinel", str(conf), "--check-config"], capture_output=True, text=True)
    assert out.returncode == 1 and "No such master" in out.stderr


def test_metrics_and_events_channel(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n").start()
    admin = free_port()
    args = ("--monitor", GROUP, "127.0.0.1", str(node.port), "1", "--admin-port", str(admin))
    s = SentinelProcess(tmp_path / "s", *args, "--down-after-milliseconds", str(DOWN_AFTER))
    try:
        s.start()
        with s.client() as c:
            wait_until(lambda: c.sentinel_master(GROUP)["runid"], 10, what="sentinel connected to the node")
        url = f"http://127.0.0.1:{admin}/metrics"
        body = wait_until(lambda: urllib.request.urlopen(url, timeout=5).read().decode(), 10, what="admin port")
        assert "kvcluster_sentinel_current_epoch 0.0" in body
        assert f'kvcluster_sentinel_master_sdown{{master="{GROUP}"}} 0.0' in body
        assert "kvcluster_sentinel_failovers_started_total" in body
        sub = s.client().pubsub()
        sub.psubscribe("*")
        node.kill()
        with s.client() as c:
            wait_until(lambda: c.sentinel_master(GROUP)["is_sdown"], 10, what="sdown")
        got = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "+sdown" not in got:
            msg = sub.get_message(timeout=0.5)
            if msg and msg["type"] == "pmessage":
                got.append(msg["channel"])
                if msg["channel"] == "+sdown":
                    assert msg["data"] == f"master {GROUP} 127.0.0.1 {node.port}"
        assert "+sdown" in got
        sub.close()
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        assert f'kvcluster_sentinel_master_sdown{{master="{GROUP}"}} 1.0' in body
    finally:
        s.stop()
        node.stop()


# -- discovery without the nodes, host names, TILT ------------------------------------------------


def test_static_peers_find_each_other_without_the_nodes(tmp_path: Path) -> None:
    """--sentinel-peers (DNS names allowed): hellos go straight to the peers, no node needed."""
    dead = free_port()  # nothing listens: no hello can travel through a node
    ports = [free_port(), free_port()]
    procs = []
    for i, port in enumerate(ports):
        peer = f"localhost:{ports[1 - i]}"
        args = ("--monitor", GROUP, "127.0.0.1", str(dead), "2", "--sentinel-peers", peer)
        procs.append(SentinelProcess(tmp_path / f"s{i}", *args, port=port))
    try:
        for p in procs:
            p.start()
        for p in procs:
            wait_until(lambda p=p: p.master()["num-other-sentinels"] == 1, 20, what="peer found through the seed")
        with procs[0].client() as c:
            assert c.sentinel_sentinels(GROUP)[0]["port"] == ports[1]
    finally:
        for p in procs:
            p.stop()


def test_host_names_resolved_and_announced(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n").start()
    plain = SentinelProcess(tmp_path / "s0", "--monitor", GROUP, "localhost", str(node.port), "1")
    named = SentinelProcess(
        tmp_path / "s1",
        *("--monitor", GROUP, "localhost", str(node.port), "1"),
        *("--resolve-hostnames", "yes", "--announce-hostnames", "yes"),
    )
    resolving = SentinelProcess(
        tmp_path / "s2", *("--monitor", GROUP, "localhost", str(node.port), "1", "--resolve-hostnames", "yes")
    )
    try:
        # Without resolve-hostnames a host name is refused, as in Redis.
        plain.start(wait=False)
        assert plain.proc is not None and plain.proc.wait(20) == 1
        assert "Invalid IP address or hostname" in plain.log()
        named.start()
        resolving.start()
        with named.client() as c:
            assert c.sentinel_get_master_addr_by_name(GROUP) == ("localhost", node.port)
        with resolving.client() as c:
            wait_until(lambda: c.sentinel_master(GROUP)["runid"], 10, what="connected")
            assert c.sentinel_get_master_addr_by_name(GROUP) == ("127.0.0.1", node.port)
    finally:
        for p in (plain, named, resolving, node):
            p.stop()


def test_a_stalled_sentinel_enters_tilt_instead_of_acting(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n").start()
    args = ("--monitor", GROUP, "127.0.0.1", str(node.port), "1", "--down-after-milliseconds", str(DOWN_AFTER))
    s = SentinelProcess(tmp_path / "s", *args)
    try:
        s.start()
        with s.client() as c:
            wait_until(lambda: c.sentinel_master(GROUP)["runid"], 10, what="connected")
            assert s.proc is not None
            os.kill(s.proc.pid, signal.SIGSTOP)
            time.sleep(3)  # the stall itself is the input: longer than the 2 s TILT trigger
            os.kill(s.proc.pid, signal.SIGCONT)
            info = wait_until(lambda: c.info("sentinel"), 10)
            assert info["sentinel_tilt"] == 1 and info["sentinel_total_tilt"] == 1
            m = c.sentinel_master(GROUP)
            assert not m["is_sdown"] and m.get("failover-state") is None
    finally:
        if s.proc is not None and s.proc.poll() is None:
            os.kill(s.proc.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        s.stop()
        node.stop()


STOCK_SENTINEL_CONF = """\
# Example sentinel.conf (the shape of the one redis-sentinel ships)
protected-mode no
port {port}
daemonize yes
pidfile {dir}/redis-sentinel.pid
logfile ""
dir "{dir}"

# sentinel monitor <master-name> <ip> <redis-port> <quorum>
sentinel monitor mymaster 127.0.0.1 {node} 2
sentinel down-after-milliseconds mymaster 30000
acllog-max-len 128
sentinel parallel-syncs mymaster 1
sentinel failover-timeout mymaster 180000
sentinel deny-scripts-reconfig yes
SENTINEL resolve-hostnames no
SENTINEL announce-hostnames no
SENTINEL master-reboot-down-after-period mymaster 0
"""


def test_a_stock_redis_sentinel_conf_loads_and_is_rewritten(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "n").start()
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(STOCK_SENTINEL_CONF.format(port=port, dir=tmp_path, node=node.port))
    s = SentinelProcess(tmp_path, port=port, config=conf)
    try:
        s.start()
        assert "'daemonize' is accepted but ignored" in s.log()
        with s.client() as c:
            wait_until(lambda: c.sentinel_master(GROUP)["runid"], 10, what="connected")
            assert c.sentinel_master(GROUP)["down-after-milliseconds"] == 30000
        text = conf.read_text()
        assert text.startswith("# Example sentinel.conf")
        assert "# sentinel monitor <master-name> <ip> <redis-port> <quorum>" in text
        assert f"sentinel monitor mymaster 127.0.0.1 {node.port} 2" in text
        assert "sentinel myid " in text and "sentinel current-epoch 0" in text
        assert "daemonize yes" in text  # lines we do not own are kept as they were
    finally:
        s.stop()
        node.stop()
    assert (tmp_path / "redis-sentinel.pid").exists() is False  # removed at exit
