"""The local cluster: ``kvcluster up``, ``status``, ``failover``, ``chaos kill-leader``.

The end-to-end test runs ``kvcluster up`` as a user would (a subprocess, its output read for the
ready line), connects with redis-py's Sentinel, kills the leader, watches writes continue and the
killed node come back as a replica, stops it with SIGTERM, and starts it again on the same data.
The restart/stop policy, the command lines and the view are pure and tested directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import redis.sentinel
from helpers import KVCLUSTER, wait_until
from kvcluster.local import policy
from kvcluster.local.plan import ChildSpec, ClusterOptions, children, node_args, sentinel_args
from kvcluster.local.status import ClusterView, ProcessView, parse_address, plain_table, ready_problems, render

# -- the restart and stop policy ------------------------------------------------------------------

POLICY = policy.RestartPolicy(initial=1, factor=2, maximum=8, reset_after=60, leader_hold=20)
NODE = ChildSpec("node", 7000, Path("/d/node-7000"))
SENTINEL = ChildSpec("sentinel", 26379, Path("/d/sentinel-26379"))


def test_backoff_doubles_up_to_the_maximum() -> None:
    assert [POLICY.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_a_crash_loop_backs_off_and_a_long_run_resets_it() -> None:
    state = policy.started(policy.ChildState(), now=0)
    for i, expected_delay in enumerate([1, 2, 4, 8, 8]):
        now = 100 * i + 5  # each run shorter than reset_after
        state = policy.started(state, now - 5)
        state = policy.exited(state, now, -9, POLICY)
        assert state.restart_at == now + expected_delay
        assert not state.running and state.exit_code == -9
    long_run = policy.started(state, 1000)
    again = policy.exited(long_run, 1000 + 61, 1, POLICY)
    assert again.failures == 1 and again.restart_at == 1062
    assert again.restarts == 6  # seven starts


def test_a_dead_replica_or_sentinel_restarts_after_its_delay() -> None:
    state = policy.exited(policy.started(policy.ChildState(), 0), 10, -9, POLICY)
    for spec in (NODE, SENTINEL):
        assert not policy.restart_due(spec, state, 10.5, leader_port=7001, policy=POLICY)
        assert policy.restart_due(spec, state, 11, leader_port=7001, policy=POLICY)
    assert not policy.restart_due(NODE, policy.started(state, 11), 12, leader_port=7001, policy=POLICY)


def test_a_dead_leader_waits_for_the_failover_then_rejoins() -> None:
    state = policy.exited(policy.started(policy.ChildState(), 0), 10, -9, POLICY)
    # The sentinels still name it: held back (it would come back as the leader).
    assert not policy.restart_due(NODE, state, 15, leader_port=7000, policy=POLICY)
    assert "after failover" in policy.waiting_reason(NODE, state, 15, 7000, POLICY)
    # They promoted another node: restart now, as its replica.
    assert policy.restart_due(NODE, state, 15, leader_port=7001, policy=POLICY)
    # Nobody to promote (no replicas): back as leader after leader_hold.
    assert policy.restart_due(NODE, state, 30, leader_port=7000, policy=POLICY)
    # Sentinels unreachable: the leader is unknown, plain back-off.
    assert policy.restart_due(NODE, state, 11, leader_port=None, policy=POLICY)
    assert policy.waiting_reason(NODE, state, 10.2, 7001, POLICY) == "restart in 1s"


def test_stop_order_is_replicas_then_leader_then_sentinels() -> None:
    specs = children(ClusterOptions(), Path("/d"))
    phases = policy.stop_phases(specs, leader_port=7001)
    assert [[s.name for s in phase] for phase in phases] == [
        ["node-7000", "node-7002"],
        ["node-7001"],
        ["sentinel-26379", "sentinel-26380", "sentinel-26381"],
    ]
    # Leader unknown: all nodes first, then the sentinels; only running children are passed in.
    assert [len(p) for p in policy.stop_phases(specs, leader_port=None)] == [3, 3]
    assert [[s.name for s in p] for p in policy.stop_phases(specs[2:4], 7001)] == [["node-7002"], ["sentinel-26379"]]


def test_the_leader_at_start_comes_from_the_sentinels_saved_state() -> None:
    state = "# kvcluster sentinel state\nsentinel myid abc\nsentinel monitor mymaster 127.0.0.1 7002 2\n"
    assert policy.saved_leader(state, "mymaster") == 7002
    assert policy.saved_leader(state, "other") is None
    ports = [7000, 7001, 7002]
    assert policy.initial_leader_port(ports, {}) == 7000  # a new cluster
    assert policy.initial_leader_port(ports, {26379: 7002, 26380: 7002, 26381: 7001}) == 7002
    assert policy.initial_leader_port(ports, {26379: 7002, 26380: 7001}) == 7001  # a tie: lower port
    assert policy.initial_leader_port(ports, {26379: 6379, 26380: None}) == 7000  # not one of ours


# -- the plan: options and command lines ----------------------------------------------------------


def test_options_validate_and_round_trip(tmp_path: Path) -> None:
    options = ClusterOptions(replicas=1, sentinels=5, port=7100, password="s3cret", durability="semi-sync")
    assert ClusterOptions.from_json(options.to_json()) == options
    assert options.quorum == 3 and options.node_ports == [7100, 7101]
    assert options.merged(replicas=None, port=7200).port == 7200
    for bad in (
        {"sentinels": 0},
        {"replicas": 0, "durability": "semi-sync"},
        {"port": 26379, "sentinel_port": 26380},
        {"port": 60000},  # its admin port would be above 65535
        {"name": "my master"},
    ):
        with pytest.raises(ValueError):
            ClusterOptions(**bad)


def test_node_and_sentinel_command_lines(tmp_path: Path) -> None:
    options = ClusterOptions(password="pw", durability="semi-sync")
    leader, replica = children(options, tmp_path)[:2]
    args = node_args(options, leader, leader_port=7000, discovery=True)
    assert "--replicaof" not in args
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--durability") + 1] == "semi-sync"
    assert args[args.index("--admin-port") + 1] == "-1"
    assert args[args.index("--min-replicas-to-write") + 1] == "1"  # the leader lease
    alone = ClusterOptions(replicas=0)
    assert "--min-replicas-to-write" not in node_args(alone, children(alone, tmp_path)[0], 7000, discovery=True)
    i = args.index("--leader-discovery-sentinels")
    assert args[i + 1 : i + 4] == ["127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"]
    assert args[args.index("--leader-discovery-password") + 1] == "pw"
    replica_args = node_args(options, replica, leader_port=7000, discovery=False)
    assert replica_args[replica_args.index("--replicaof") + 1 :][:2] == ["127.0.0.1", "7000"]
    assert "--leader-discovery-sentinels" not in replica_args
    s = children(options, tmp_path)[3]
    sargs = sentinel_args(options, s, 7000)
    assert sargs[sargs.index("--monitor") + 1 :][:4] == ["mymaster", "127.0.0.1", "7000", "2"]
    i = sargs.index("--sentinel-peers")
    assert sargs[i + 1 : i + 3] == ["127.0.0.1:26380", "127.0.0.1:26381"]
    assert sargs[sargs.index("--auth-pass") + 1] == "pw"


# -- the view -------------------------------------------------------------------------------------


def _view() -> ClusterView:
    leader = ProcessView("node", "127.0.0.1:7000", "node-7000", "leader", True, "ok", epoch=1, offset=100, pid=11)
    r1 = ProcessView("node", "127.0.0.1:7001", "node-7001", "replica", True, "ok", epoch=1, offset=90)
    r1.lag_bytes, r1.lag_seconds, r1.replicates = 10, 0, leader.address
    r2 = ProcessView("node", "127.0.0.1:7002", "node-7002", "-", False, "exited", note="killed by SIGKILL")
    sentinels = []
    for port in (26379, 26380, 26381):
        s = ProcessView("sentinel", f"127.0.0.1:{port}", f"sentinel-{port}", "sentinel", True, "ok", epoch=1, pid=port)
        s.names_leader, s.sees_replicas, s.sees_sentinels = leader.address, 2, 2
        sentinels.append(s)
    return ClusterView("mymaster", leader.address, 1, True, [leader, r1, r2, *sentinels], ["12:00:00 node-7002 killed"])


def test_ready_problems_say_what_is_missing() -> None:
    view = _view()
    assert ready_problems(view, replicas=2, sentinels=3) == ["1 of 2 replicas online"]
    assert ready_problems(view, replicas=1, sentinels=3) == []
    view.sentinels[0].names_leader = "127.0.0.1:7001"
    view.sentinels_agree = False
    assert "the sentinels do not agree on the leader yet" in ready_problems(view, 1, 3)


def test_json_and_table_show_each_process() -> None:
    data = json.loads(_view().to_json())
    assert data["leader"] == "127.0.0.1:7000" and data["epoch"] == 1
    assert [n["role"] for n in data["nodes"]] == ["leader", "replica", "-"]
    assert data["nodes"][1]["lag_bytes"] == 10 and "names_leader" not in data["nodes"][0]
    assert data["sentinels"][0]["names_leader"] == "127.0.0.1:7000" and "offset" not in data["sentinels"][0]
    table = plain_table(_view())
    assert "leader 127.0.0.1:7000 (node-7000) · epoch 1" in table
    for text in ("node-7000", "node-7002", "exited", "killed by SIGKILL", "sentinel-26381", "2 replicas, 2 peers"):
        assert text in table
    from rich.console import Console

    console = Console(record=True, width=150)
    console.print(render(_view()))
    assert "node-7002 killed" in console.export_text()


def test_the_live_view_redraws_with_events_and_ends_with_the_last_ones() -> None:
    import io

    from kvcluster.local.supervisor import LiveReporter
    from rich.console import Console

    out = io.StringIO()
    reporter = LiveReporter("kvcluster up · mymaster", Console(file=out, force_terminal=True, width=140))
    reporter.event("node-7002 killed by SIGKILL; restart in 1s")
    reporter.say("kvcluster is ready")
    reporter.update(_view())
    reporter.event("node-7002 restarted as replica of node-7000 (pid 12)")
    reporter.close()
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())  # the terminal's control sequences
    assert "kvcluster is ready" in text and "kvcluster up · mymaster · leader 127.0.0.1:7000" in text
    assert "node-7002 killed by SIGKILL" in text  # in the view's event list
    assert text.rstrip().endswith("node-7002 restarted as replica of node-7000 (pid 12)")  # below the last frame


def test_parse_address() -> None:
    assert parse_address("10.0.0.1:26380") == ("10.0.0.1", 26380)
    assert parse_address("sentinel.local") == ("sentinel.local", 26379)
    assert parse_address("[::1]:5000") == ("::1", 5000)


# -- end to end: real processes -------------------------------------------------------------------


def _free_range(count: int, low: int, high: int) -> int:
    """A first port such that ``count`` consecutive ports and their admin ports (+10000) are free."""
    for _ in range(200):
        first = random.randrange(low, high)
        try:
            with contextlib.ExitStack() as stack:
                for port in [*range(first, first + count), *range(first + 10000, first + 10000 + count)]:
                    s = stack.enter_context(socket.socket())
                    s.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
    raise RuntimeError("no free port range")


class Up:
    """``kvcluster up`` as a subprocess; its output lines collected by a thread."""

    def __init__(self, directory: Path, *args: str):
        self.dir = directory
        cmd = [*KVCLUSTER, "up", "--dir", str(directory), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 90) -> None:
        def seen() -> bool:
            if any(text in line for line in self.lines):
                return True
            if self.proc.poll() is not None:
                raise AssertionError(f"kvcluster up exited with {self.proc.returncode}:\n{self.output()}")
            return False

        try:
            wait_until(seen, timeout, interval=0.1, what=repr(text))
        except TimeoutError as e:
            raise AssertionError(f"{e}\noutput:\n{self.output()}") from None

    def descendants(self) -> list[psutil.Process]:
        with contextlib.suppress(psutil.Error):
            return psutil.Process(self.proc.pid).children(recursive=True)
        return []

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self._reader.join(5)

    def kill_all(self) -> None:
        """Clean-up after a failure: the children by PID, then us."""
        for child in self.descendants():
            with contextlib.suppress(psutil.Error):
                child.kill()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _processes_in(directory: Path) -> list[psutil.Process]:
    """Live processes whose command line names ``directory`` (children of ``up`` run with --dir in it)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and str(directory) in " ".join(proc.info["cmdline"] or ()):
                found.append(proc)
    return found


def kvcluster(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KVCLUSTER, *args], capture_output=True, text=True, timeout=timeout)


def status(directory: Path) -> dict[str, Any]:
    result = kvcluster("status", "--json", "--dir", str(directory))
    assert result.returncode == 0, result.stderr + result.stdout
    return json.loads(result.stdout)


@pytest.fixture
def ports() -> tuple[int, int]:
    return _free_range(3, 20000, 29000), _free_range(3, 30000, 39000)


@pytest.fixture
def ups(tmp_path: Path) -> Iterator[list[Up]]:
    started: list[Up] = []
    yield started
    for up in started:
        up.kill_all()
    for orphan in _processes_in(tmp_path):  # children of an `up` killed on purpose
        with contextlib.suppress(psutil.Error):
            orphan.kill()


class Writer(threading.Thread):
    """Writes through Sentinel.master_for until stopped; records acknowledged writes and leaders."""

    def __init__(self, sentinel: redis.sentinel.Sentinel):
        super().__init__(daemon=True)
        self.master = sentinel.master_for("mymaster", socket_timeout=1)
        self.acked: list[tuple[int, int]] = []  # (i, leader port)
        self.stop_flag = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stop_flag.is_set():
            i += 1
            try:
                self.master.set(f"w{i}", i)
                port = self.master.connection_pool.get_master_address()[1]
                self.acked.append((i, int(port)))
            except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                time.sleep(0.05)
            time.sleep(0.01)


@pytest.mark.timeout(300)
def test_up_survives_a_killed_leader_stops_cleanly_and_resumes(
    tmp_path: Path, ports: tuple[int, int], ups: list[Up]
) -> None:
    node_port, sentinel_port = ports
    cluster_dir = tmp_path / "cluster"
    args = ("--port", str(node_port), "--sentinel-port", str(sentinel_port), "--down-after-milliseconds", "2000")
    up = Up(cluster_dir, *args)
    ups.append(up)
    up.wait_for("kvcluster is ready")
    out = up.output()
    sentinel_list = " ".join(f"127.0.0.1:{sentinel_port + i}" for i in range(3))
    assert sentinel_list in out and "group:      mymaster" in out
    assert f"redis-cli -p {sentinel_port} SENTINEL get-master-addr-by-name mymaster" in out
    assert "from redis.sentinel import Sentinel" in out

    first = status(cluster_dir)
    assert first["leader"] == f"127.0.0.1:{node_port}" and first["sentinels_agree"]
    assert [(n["name"], n["role"], n["health"]) for n in first["nodes"]] == [
        (f"node-{node_port}", "leader", "ok"),
        (f"node-{node_port + 1}", "replica", "ok"),
        (f"node-{node_port + 2}", "replica", "ok"),
    ]
    assert all(s["health"] == "ok" and s["sees_sentinels"] == 2 for s in first["sentinels"])

    sentinel = redis.sentinel.Sentinel(
        [("127.0.0.1", sentinel_port + i) for i in range(3)], socket_timeout=1, sentinel_kwargs={"socket_timeout": 1}
    )
    leader = sentinel.master_for("mymaster", socket_timeout=2)
    leader.set("before", "kill")
    assert leader.wait(2, 10000) == 2  # on every replica, so the failover cannot lose it
    writer = Writer(sentinel)
    writer.start()
    try:
        wait_until(lambda: len(writer.acked) > 20, 30, what="writes through the sentinels")
        killed = kvcluster("chaos", "kill-leader", "--dir", str(cluster_dir))
        assert killed.returncode == 0, killed.stdout + killed.stderr
        assert f"killed the leader 127.0.0.1:{node_port}" in killed.stdout
        assert "leader is now 127.0.0.1:" in killed.stdout
        # Writes continue, on the new leader.
        wait_until(lambda: writer.acked and writer.acked[-1][1] != node_port, 60, what="writes on the new leader")
        new_leader = writer.acked[-1][1]
        # The killed node comes back (held until the failover), as a replica of the new leader.
        up.wait_for(f"node-{node_port} restarted", 60)

        def old_leader_rejoined() -> bool:
            nodes = {n["name"]: n for n in status(cluster_dir)["nodes"]}
            old = nodes[f"node-{node_port}"]
            return old["role"] == "replica" and old["health"] == "ok" and old["replicates"] == f"127.0.0.1:{new_leader}"

        try:
            wait_until(old_leader_rejoined, 60, interval=0.5, what="the killed leader back as a replica")
        except TimeoutError as e:
            raise AssertionError(f"{e}\n{up.output()}") from None
        assert f"node-{node_port} restarted as replica of node-{new_leader}" in up.output()
        assert "+switch-master" in up.output()
    finally:
        writer.stop_flag.set()
        writer.join(10)
    assert leader.get("before") == b"kill"

    # A planned failover moves the leader again, losing nothing.
    leader.set("planned", "yes")
    moved = kvcluster("failover", "--dir", str(cluster_dir))
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "leader is now 127.0.0.1:" in moved.stdout
    assert f"leader is now 127.0.0.1:{new_leader}" not in moved.stdout
    # The leader at shutdown, as the sentinels agree on it (on a loaded machine another failover may
    # have followed the planned one: what matters is that the next `up` resumes with that leader).
    agreed = wait_until(
        lambda: (s := status(cluster_dir))["sentinels_agree"] and s["leader"], 30, interval=0.5, what="agreement"
    )
    final_leader = agreed.rpartition(":")[2]
    leader.set("last", "write")
    assert leader.wait(2, 10000) == 2

    # SIGTERM: exit 0, every child gone.
    pids = [p.pid for p in up.descendants()]
    assert len(pids) >= 6
    assert up.stop() == 0, up.output()
    assert not [p for p in _processes_in(cluster_dir) if p.pid in pids]
    assert "stopping: replicas, then the leader, then the sentinels" in up.output()

    # Up again: the same cluster, the same leader, the data.
    again = Up(cluster_dir)  # the ports and settings come from cluster.json
    ups.append(again)
    again.wait_for("kvcluster is ready")
    assert f"node-{final_leader} leads" in again.output()
    resumed = status(cluster_dir)
    assert resumed["leader"] == f"127.0.0.1:{final_leader}"
    client = redis.sentinel.Sentinel([("127.0.0.1", sentinel_port)], socket_timeout=1).master_for("mymaster")
    assert client.mget("before", "planned", "last") == [b"kill", b"yes", b"write"]
    last_acked = writer.acked[-1][0]
    assert client.get(f"w{last_acked}") == str(last_acked).encode()  # acknowledged before the planned failover

    # `up` itself killed: its children keep running; the next `up` stops them in order and resumes.
    again.proc.kill()
    again.proc.wait(10)
    third = Up(cluster_dir)
    ups.append(third)
    third.wait_for("kvcluster is ready")
    assert "stopping processes left running by an earlier kvcluster up" in third.output()
    assert status(cluster_dir)["leader"] == f"127.0.0.1:{final_leader}"

    # A replica and a sentinel killed with SIGKILL are restarted (like pods) and rejoin.
    before = status(cluster_dir)
    replica = next(n for n in before["nodes"] if n["role"] == "replica")
    a_sentinel = before["sentinels"][0]
    os.kill(replica["pid"], signal.SIGKILL)
    os.kill(a_sentinel["pid"], signal.SIGKILL)
    third.wait_for(f"{replica['name']} restarted", 60)
    third.wait_for(f"{a_sentinel['name']} restarted", 60)

    def both_back() -> bool:
        now = status(cluster_dir)
        node = next(n for n in now["nodes"] if n["name"] == replica["name"])
        sentinel_row = next(x for x in now["sentinels"] if x["name"] == a_sentinel["name"])
        return (
            now["leader"] == f"127.0.0.1:{final_leader}"
            and node["pid"] != replica["pid"]
            and node["role"] == "replica"
            and node["health"] == "ok"
            and sentinel_row["pid"] != a_sentinel["pid"]
            and sentinel_row["health"] == "ok"
            and sentinel_row["names_leader"] == f"127.0.0.1:{final_leader}"
        )

    try:
        wait_until(both_back, 60, interval=0.5, what="the killed replica and sentinel back")
    except TimeoutError as e:
        raise AssertionError(f"{e}\n{third.output()}") from None
    assert third.stop() == 0, third.output()
    assert not _processes_in(cluster_dir)


def test_up_reports_a_child_that_cannot_start(tmp_path: Path, ports: tuple[int, int], ups: list[Up]) -> None:
    node_port, sentinel_port = ports
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.bind(("127.0.0.1", node_port + 1))
        taken.listen()
        up = Up(tmp_path / "c", "--port", str(node_port), "--sentinel-port", str(sentinel_port))
        ups.append(up)
        code = up.proc.wait(90)
    up._reader.join(5)
    assert code == 1, up.output()
    out = up.output()
    assert f"node-{node_port + 1} exited with status 1 during start-up" in out
    assert "its log ends" in out
    assert not _processes_in(tmp_path)


def test_status_without_a_cluster_says_so(tmp_path: Path) -> None:
    port = _free_range(1, 40000, 45000)
    result = kvcluster("status", "--sentinel", f"127.0.0.1:{port}", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert f"no sentinel at 127.0.0.1:{port} knows group 'mymaster'" in result.stderr


def test_chaos_refuses_without_a_leader(tmp_path: Path) -> None:
    port = _free_range(1, 45000, 50000)
    result = kvcluster("chaos", "kill-leader", "--sentinel", f"127.0.0.1:{port}", "--dir", str(tmp_path))
    assert result.returncode == 1 and "knows group" in result.stdout
    assert os.path.exists(tmp_path)
