"""A real network partition (Linux network namespaces): the leader and one sentinel cut off.

Two namespaces joined by a bridge in the root namespace, each behind one veth link:

* ``A``: the leader and sentinel s0, and a client writing to the leader from inside;
* ``B``: both replicas and sentinels s1, s2 (a majority).

Cutting A's link (``ip link set <veth> down``) isolates the leader with one sentinel. The
majority side must fail over; the isolated leader must stop accepting writes within its lease
(``min-replicas-to-write 1``, ``min-replicas-max-lag``); after healing there must be one leader
holding the majority side's writes, the old leader its replica. Needs root (CI runs as root);
skips with the reason where the kernel refuses namespaces.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.sentinel
from helpers import KVCLUSTER, wait_until

GROUP = "mymaster"
DOWN_AFTER = 1000
LEASE = 2  # min-replicas-max-lag, seconds
# The documented window: the lease after the last replica ACK (replicas ACK every second),
# plus the node's 100 ms gate refresh; the margin covers scheduling on a loaded machine.
WINDOW = LEASE + 1.0


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20)


class Net:
    def __init__(self) -> None:
        tag = f"{os.getpid() % 1000:03d}{random.randrange(100):02d}"
        self.tag = tag
        self.bridge = f"kvb{tag}"
        self.subnet = f"10.{random.randrange(100, 250)}.{random.randrange(1, 250)}"
        self.namespaces: dict[str, str] = {}  # name -> ip
        self.veths: dict[str, str] = {}

    def setup(self) -> None:
        for cmd in (
            ["link", "add", self.bridge, "type", "bridge"],
            ["addr", "add", f"{self.subnet}.1/24", "dev", self.bridge],
            ["link", "set", self.bridge, "up"],
        ):
            out = _ip(*cmd)
            if out.returncode:
                raise OSError(out.stderr.strip())
        for i, name in enumerate(("A", "B")):
            ns = f"kvns{self.tag}{name}"
            host, peer = f"kvh{self.tag}{name}", f"kvn{self.tag}{name}"
            ip = f"{self.subnet}.{10 + i}"
            self.namespaces[name] = ns  # recorded first: teardown removes what was made
            self.veths[name] = host
            for cmd in (
                ["netns", "add", ns],
                ["link", "add", host, "type", "veth", "peer", "name", peer],
                ["link", "set", peer, "netns", ns],
                ["-n", ns, "addr", "add", f"{ip}/24", "dev", peer],
                ["-n", ns, "link", "set", peer, "up"],
                ["-n", ns, "link", "set", "lo", "up"],
                ["link", "set", host, "master", self.bridge],
                ["link", "set", host, "up"],
            ):
                out = _ip(*cmd)
                if out.returncode:
                    raise OSError(f"ip {' '.join(cmd)}: {out.stderr.strip()}")

    def ip_of(self, name: str) -> str:
        return f"{self.subnet}.{10 + list(self.namespaces).index(name)}"

    def cut(self, name: str) -> None:
        assert _ip("link", "set", self.veths[name], "down").returncode == 0

    def heal(self, name: str) -> None:
        assert _ip("link", "set", self.veths[name], "up").returncode == 0

    def teardown(self) -> None:
        for host in self.veths.values():
            _ip("link", "del", host)  # both ends; netns del alone can leave it behind for a while
        for ns in self.namespaces.values():
            _ip("netns", "del", ns)
        _ip("link", "del", self.bridge)


class NsProcess:
    """A process run inside a namespace (``ip netns exec`` execs it: the PID is the program's)."""

    def __init__(self, net: Net, where: str, cmd: list[str], directory: Path, port: int | None):
        directory.mkdir(parents=True, exist_ok=True)
        self.ip = net.ip_of(where)
        self.port = port
        self.log_path = directory / "out.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", net.namespaces[where], *cmd], stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_ready(self) -> None:
        assert self.port is not None

        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited: {self.log_path.read_text()[-2000:]}")
            with redis.Redis(host=self.ip, port=self.port, socket_timeout=1) as c:
                return bool(c.ping())

        wait_until(up, 20, what=f"{self.ip}:{self.port}")

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.ip, port=self.port, socket_timeout=2, decode_responses=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


@pytest.fixture
def net() -> Iterator[Net]:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("network namespaces need root and iproute2's ip")
    n = Net()
    try:
        n.setup()
    except OSError as e:
        n.teardown()
        pytest.skip(f"the kernel refuses network namespaces here: {e}")
    try:
        yield n
    finally:
        n.teardown()


WRITER = """
import sys, time, redis
host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = redis.Redis(host=host, port=port, socket_timeout=0.5)
i = 0
with open(out, "a") as f:
    while True:
        i += 1
        try:
            c.set(f"a{i}", i)
        except Exception:
            time.sleep(0.02)
            continue
        f.write(f"{time.time()} {i}\\n")
        f.flush()
        time.sleep(0.01)
"""


def test_partition_isolating_the_leader_with_one_sentinel(net: Net, tmp_path: Path) -> None:
    a, b = net.ip_of("A"), net.ip_of("B")
    node_args = ["--min-replicas-to-write", "1", "--min-replicas-max-lag", str(LEASE)]
    procs: list[NsProcess] = []

    def node(where: str, port: int, *extra: str) -> NsProcess:
        ip = net.ip_of(where)
        cmd = [*KVCLUSTER, "node", "--bind", ip, "--port", str(port), "--dir", str(tmp_path / f"n{ip}-{port}")]
        p = NsProcess(net, where, [*cmd, *node_args, *extra], tmp_path / f"n{ip}-{port}", port)
        procs.append(p)
        return p

    def sentinel(where: str, port: int) -> NsProcess:
        ip = net.ip_of(where)
        d = tmp_path / f"s{ip}-{port}"
        cmd = [*KVCLUSTER, "sentinel", "--bind", ip, "--port", str(port), "--dir", str(d)]
        cmd += ["--monitor", GROUP, a, "6379", "2", "--down-after-milliseconds", str(DOWN_AFTER)]
        cmd += ["--failover-timeout", "6000"]
        p = NsProcess(net, where, cmd, d, port)
        procs.append(p)
        return p

    writer: subprocess.Popen[bytes] | None = None
    try:
        leader = node("A", 6379)
        leader.wait_ready()
        replicas = [node("B", 6379, "--replicaof", a, "6379"), node("B", 6380, "--replicaof", a, "6379")]
        for r in replicas:
            r.wait_ready()
        with leader.client() as c:
            wait_until(lambda: c.info("replication")["connected_slaves"] == 2, 20, what="replicas online")
        sentinels = [sentinel("A", 26379), sentinel("B", 26379), sentinel("B", 26380)]
        for s in sentinels:
            s.wait_ready()

        def discovered() -> bool:
            for s in sentinels:
                with s.client() as c:
                    m = c.sentinel_master(GROUP)
                    if m["num-slaves"] != 2 or m["num-other-sentinels"] != 2:
                        return False
            return True

        wait_until(discovered, 30, interval=0.2, what="discovery")
        # A client inside A writes to the leader all along and logs every acknowledged write.
        script = tmp_path / "writer.py"
        script.write_text(WRITER)
        acks = tmp_path / "acks.txt"
        writer = subprocess.Popen(
            ["ip", "netns", "exec", net.namespaces["A"], sys.executable, str(script), a, "6379", str(acks)]
        )
        wait_until(lambda: acks.exists() and len(acks.read_text().splitlines()) > 20, 20, what="writes in A")

        cut_at = time.time()
        net.cut("A")
        majority = redis.sentinel.Sentinel([(b, 26379), (b, 26380)], socket_timeout=1.0)

        def failed_over() -> bool:
            host, _ = majority.discover_master(GROUP)
            return host == b

        wait_until(failed_over, DOWN_AFTER / 1000 + 30, interval=0.2, what="failover on the majority side")
        print(f"majority failed over {time.time() - cut_at:.2f} s after the cut")
        master = majority.master_for(GROUP, socket_timeout=1.0)
        written = []
        for i in range(50):
            for _ in range(50):
                try:
                    master.set(f"b{i}", i)
                    written.append(f"b{i}")
                    break
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    time.sleep(0.1)
        assert len(written) == 50
        # Let the isolated writer keep trying well past the lease.
        while time.time() < cut_at + WINDOW + 2:
            time.sleep(0.1)
        net.heal("A")
        new_host, new_port = majority.discover_master(GROUP)

        with leader.client() as c:
            wait_until(lambda: c.info("replication").get("master_port") == new_port, 30, what="old leader rejoins")
        with sentinels[0].client() as c:
            wait_until(
                lambda: (
                    int(c.sentinel_get_master_addr_by_name(GROUP)[1]) == new_port
                    and c.sentinel_get_master_addr_by_name(GROUP)[0] == new_host
                ),
                30,
                what="isolated sentinel learns the new leader",
            )
        masters = []
        for p in procs[:3]:
            with p.client() as c:
                if c.info("replication")["role"] == "master":
                    masters.append(p.port)
        assert masters == [new_port], masters
        new_leader = next(p for p in procs[1:3] if p.port == new_port)
        with new_leader.client() as c:
            assert all(v is not None for v in c.mget(written)), "majority-side writes missing"
        majority.close()
    finally:
        if writer is not None:
            writer.kill()
            writer.wait(5)
        for p in procs:
            p.stop()
    acked_at = [float(line.split()[0]) for line in acks.read_text().splitlines()]
    during = [t for t in acked_at if t > cut_at]
    last = max(during) - cut_at if during else 0.0
    print(f"isolated leader acknowledged {len(during)} writes after the cut, the last {last:.2f} s after it")
    late = [t - cut_at for t in during if t > cut_at + WINDOW]
    # After the heal the old leader is fenced and then a replica: nothing late is acknowledged either.
    assert not late, f"{len(late)} writes accepted by the isolated leader after its lease: {late[:5]}"
