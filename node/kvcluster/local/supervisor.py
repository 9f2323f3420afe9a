"""The process side of ``kvcluster up``: start, watch, restart and stop the children, and show them.

The decisions (when to restart which child, the stop order, which node leads at start) are the
pure functions of :mod:`kvcluster.local.policy`; this module runs processes, polls the cluster
once a second (:func:`kvcluster.local.status.collect`), listens to a sentinel's events, and
reports through a :class:`Reporter` (a live rich view on a terminal, plain lines otherwise).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import redis.asyncio as aredis
from kvcluster.local import policy
from kvcluster.local.plan import (
    HOST,
    LOCK_FILE,
    OPTIONS_FILE,
    ChildSpec,
    ClusterOptions,
    children,
    node_args,
    sentinel_args,
)
from kvcluster.local.status import Clients, ClusterView, collect, plain_table, ready_problems, render
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from rich.console import Console

KVCLUSTER = [sys.executable, "-m", "kvcluster.cli"]
READY_LINE = "kvcluster is ready"
POLL_INTERVAL = 1.0
# Ctrl-C, kill, and a closed terminal all stop the cluster in order (the children run in their own
# sessions, so none of these reaches them directly).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
START_TIMEOUT = 60.0  # a start-up this slow is reported (and waited for further)
SENTINEL_STATE_FILE = "sentinel-state.conf"  # where a sentinel started with --dir saves its state
STOP_TIMEOUT = {"node": 20.0, "sentinel": 10.0}  # SIGTERM, then SIGKILL after this

# Sentinel events worth a line in the view (the rest, like hellos and discoveries, are noise here).
SHOWN_EVENTS = (
    "+sdown",
    "-sdown",
    "+odown",
    "-odown",
    "+try-failover",
    "+elected-leader",
    "+selected-slave",
    "+promoted-slave",
    "+failover-end",
    "+switch-master",
    "+convert-to-slave",
    "+tilt",
    "-tilt",
    "-failover-abort",
    "+failover-end-for-timeout",
)


def node_supports_discovery() -> bool:
    """Whether this node build has the leader-discovery settings (team interface N)."""
    from kvcluster.node.settings import node_config

    return "leader-discovery-sentinels" in node_config().by_name


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exited"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


# -- output ---------------------------------------------------------------------------------------


class Reporter:
    """Plain lines on standard output: for pipes, logs and tests.

    Output errors are ignored: after the terminal closed (SIGHUP) the cluster must still stop in order.
    """

    def __init__(self) -> None:
        self.events: list[str] = []

    def event(self, text: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {text}"
        self.events.append(line)
        del self.events[:-50]
        self.say(line)

    def say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            print(text, flush=True)

    def update(self, view: ClusterView) -> None:
        pass

    def table(self, view: ClusterView) -> None:
        self.say(plain_table(view).rstrip())

    def close(self) -> None:
        pass


class LiveReporter(Reporter):
    """A rich live view redrawn every poll; messages scroll above it."""

    def __init__(self, title: str, console: Console | None = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.live import Live

        self.title = title
        self.console = console or Console()
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.live.start()

    def event(self, text: str) -> None:  # shown in the view's event list
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")
        del self.events[:-50]

    def say(self, text: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.console.print(text, highlight=False, markup=False)

    def update(self, view: ClusterView) -> None:
        view.events = list(self.events)
        with contextlib.suppress(OSError, ValueError):
            self.live.update(render(view, self.title), refresh=True)

    def table(self, view: ClusterView) -> None:
        self.update(view)

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.live.stop()
        for line in self.events[-3:]:  # how it ended, below the last frame
            self.say(line)


# -- children -------------------------------------------------------------------------------------


@dataclass
class Child:
    spec: ChildSpec
    state: policy.ChildState = field(default_factory=policy.ChildState)
    proc: asyncio.subprocess.Process | None = None
    log: IO[bytes] | None = None
    waiter: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class StartError(Exception):
    pass


class Supervisor:
    def __init__(
        self,
        options: ClusterOptions,
        root: Path,
        reporter: Reporter,
        restart_policy: policy.RestartPolicy | None = None,
    ):
        self.options = options
        self.root = root
        self.reporter = reporter
        self.policy = restart_policy or policy.RestartPolicy(
            leader_hold=(options.down_after_milliseconds + options.failover_timeout) / 1000
        )
        self.children = [Child(spec) for spec in children(options, root)]
        self.discovery = node_supports_discovery()
        self.leader_port: int | None = None  # as the sentinels last named it
        self.ready = False
        self.stop_requested = asyncio.Event()
        self.force_stop = asyncio.Event()
        self.start_failure: str | None = None
        self.clients = Clients(options.password)
        self._lock_file: IO[str] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._switch_seen_at = 0.0  # when the last +switch-master arrived

    # -- life cycle ----------------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in STOP_SIGNALS:
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            self._lock()
            await self._start()
            await self._supervise()
        except StartError as e:
            self.start_failure = str(e)
        finally:
            await self._shutdown()
            await self.clients.close()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        if self.start_failure:
            print(f"kvcluster up: {self.start_failure}", file=sys.stderr, flush=True)
            return 1
        return 0

    def _on_signal(self, sig: int) -> None:
        if self.stop_requested.is_set():
            self.reporter.event(f"{signal.Signals(sig).name} again: killing what is left")
            self.force_stop.set()
        self.stop_requested.set()

    def _lock(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        lock = open(self.root / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole run
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            lock.close()
            raise StartError(f"another kvcluster up is running in {self.root} (pid {holder})") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        self._lock_file = lock
        # Only for the owner: it may hold the password.
        fd = os.open(self.root / OPTIONS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as options_file:
            options_file.write(self.options.to_json())

    async def _start(self) -> None:
        sentinels = [c for c in self.children if c.spec.kind == "sentinel"]
        nodes = [c for c in self.children if c.spec.kind == "node"]
        for child in self.children:
            child.spec.directory.mkdir(parents=True, exist_ok=True)
        # A new cluster: node 0 leads. Resuming: whom the sentinels' saved state names.
        saved = {c.spec.port: _read(c.spec.directory / SENTINEL_STATE_FILE) for c in sentinels}
        named = {port: policy.saved_leader(text, self.options.name) for port, text in saved.items() if text}
        self.leader_port = policy.initial_leader_port(self.options.node_ports, named)
        self._stop_leftovers()
        if named:
            self.reporter.event(f"resuming the cluster in {self.root}: node-{self.leader_port} leads")
        # The nodes go first, leader first, so the sentinels find them serving (no +sdown of a
        # leader that is still starting, no failover decided before the replicas are back).
        leader = next(c for c in nodes if c.spec.port == self.leader_port)
        for child in [leader, *(c for c in nodes if c is not leader)]:
            await self._spawn(child)
        await self._wait_answer(nodes, "PING")
        for child in sentinels:
            await self._spawn(child)

    def _stop_leftovers(self) -> None:
        """Children of an earlier ``up`` that was itself killed (their pid files name live kvcluster
        processes started for this directory): stopped in the usual order before starting ours."""
        import psutil

        found: dict[ChildSpec, psutil.Process] = {}
        for child in self.children:
            spec = child.spec
            try:
                proc = psutil.Process(int(spec.pid_path.read_text().split()[0]))
                cmdline = " ".join(proc.cmdline())
            except (OSError, ValueError, IndexError, psutil.Error):
                continue
            if "kvcluster" in cmdline and str(spec.directory) in cmdline:
                found[spec] = proc
        if not found:
            return
        pids = ", ".join(f"{spec.name} (pid {proc.pid})" for spec, proc in found.items())
        self.reporter.event(f"stopping processes left running by an earlier kvcluster up: {pids}")
        for phase in policy.stop_phases(found, self.leader_port):
            procs = [found[spec] for spec in phase]
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.terminate()
            _, alive = psutil.wait_procs(procs, timeout=max(STOP_TIMEOUT[s.kind] for s in phase))
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            psutil.wait_procs(alive, timeout=5)

    async def _wait_answer(self, group: list[Child], *command: str) -> dict[int, Any]:
        """Each child's reply to ``command``, once all of them answer it (port -> reply)."""
        deadline = time.monotonic() + START_TIMEOUT
        answers: dict[int, Any] = {}
        while len(answers) < len(group):
            self._check_start_failure()
            if self.stop_requested.is_set():
                raise StartError("stopped during start-up")
            for child in group:
                if child.spec.port in answers:
                    continue
                try:
                    answers[child.spec.port] = await self.clients.get(child.spec.address).execute_command(*command)
                except (RedisError, OSError):
                    continue
            if time.monotonic() > deadline:
                waiting = ", ".join(c.spec.name for c in group if c.spec.port not in answers)
                raise StartError(f"{waiting} did not answer within {START_TIMEOUT:.0f}s; see the logs in {self.root}")
            await asyncio.sleep(0.1)
        return answers

    def _check_start_failure(self) -> None:
        if self.start_failure:
            raise StartError(self.start_failure)

    async def _spawn(self, child: Child) -> None:
        spec = child.spec
        if spec.kind == "node":
            leader = self.leader_port if self.leader_port is not None else self.options.node_ports[0]
            # At the first start we know the leader (node 0, or the sentinels' saved state) and the
            # sentinels are not up yet; a restart asks them, as they may have moved on since.
            args = node_args(self.options, spec, leader, self.discovery and child.state.starts > 0)
        else:
            # --monitor only counts without saved state (a new cluster): then the current leader.
            args = sentinel_args(self.options, spec, self.leader_port or self.options.node_ports[0])
        if child.log is None:
            child.log = open(spec.log_path, "ab")  # noqa: SIM115 - closed at shutdown
        child.log.write(f"--- kvcluster up starts: {' '.join([spec.kind, *args])}\n".encode())
        child.log.flush()
        child.proc = await asyncio.create_subprocess_exec(
            *KVCLUSTER,
            spec.kind,
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=child.log,
            stderr=asyncio.subprocess.STDOUT,
            cwd=spec.directory,
            start_new_session=True,  # Ctrl-C reaches only us; we stop the children in order
        )
        child.state = policy.started(child.state, time.monotonic())
        role = ""
        if spec.kind == "node":
            role = " as leader" if spec.port == leader else f" as replica of node-{leader}"
        verb = "restarted" if child.state.restarts else "started"
        self.reporter.event(f"{spec.name} {verb}{role} (pid {child.proc.pid})")
        child.waiter = asyncio.create_task(self._wait_exit(child, child.proc))

    async def _wait_exit(self, child: Child, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        child.state = policy.exited(child.state, time.monotonic(), code, self.policy)
        if self.stop_requested.is_set():
            return
        if not self.ready:
            tail = _tail(child.spec.log_path)
            self.start_failure = f"{child.spec.name} {describe_exit(code)} during start-up; its log ends:\n{tail}"
            self.stop_requested.set()
            return
        if child.spec.kind == "node" and child.spec.port == self.leader_port:
            when = f"restart once the sentinels have promoted a replica (at most {self.policy.leader_hold:.0f}s)"
        else:
            delay = child.state.restart_at - time.monotonic() if child.state.restart_at else 0
            when = f"restart in {max(0, delay):.0f}s"
        self.reporter.event(f"{child.spec.name} {describe_exit(code)}; {when}")

    async def _supervise(self) -> None:
        self._tasks.append(asyncio.create_task(self._follow_events()))
        started = time.monotonic()
        slow_reported = False
        while not self.stop_requested.is_set():
            self._check_start_failure()
            view = await self._poll()
            if not self.ready:
                problems = ready_problems(view, self.options.replicas, self.options.sentinels)
                if not problems:
                    self.ready = True
                    self._announce(view)
                elif not slow_reported and time.monotonic() - started > START_TIMEOUT:
                    slow_reported = True
                    self.reporter.event(f"not ready after {START_TIMEOUT:.0f}s: {'; '.join(problems)}")
            else:
                await self._restart_due()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop_requested.wait(), POLL_INTERVAL)
        self._check_start_failure()

    async def _poll(self) -> ClusterView:
        polled_at = time.monotonic()
        view = await collect(
            [c.spec.address for c in self.children if c.spec.kind == "sentinel"],
            self.options.name,
            extra_nodes=[c.spec.address for c in self.children if c.spec.kind == "node"],
            clients=self.clients,
        )
        self._overlay(view)
        if self._switch_seen_at < polled_at:  # else this poll may predate the +switch-master
            self._observe_leader(view)
        self.reporter.update(view)
        return view

    def _overlay(self, view: ClusterView) -> None:
        """What only the supervisor knows: names, restarts, and why a child is not running."""
        now = time.monotonic()
        by_address = {c.spec.address: c for c in self.children}
        for row in view.processes:
            child = by_address.get(row.address)
            if child is None:
                continue
            row.name = child.spec.name
            row.restarts = child.state.restarts
            if not child.running:
                row.health = "exited"
                row.pid = None
                row.role = row.role if row.reachable else "-"
                reason = policy.waiting_reason(child.spec, child.state, now, self.leader_port, self.policy)
                row.note = f"{describe_exit(child.state.exit_code)}; {reason}" if reason else ""
            elif not row.reachable and row.health == "down":
                row.health = "starting"
        order = {c.spec.address: i for i, c in enumerate(self.children)}
        view.processes.sort(key=lambda r: (r.kind != "node", order.get(r.address, len(order)), r.address))

    def _observe_leader(self, view: ClusterView) -> None:
        if not view.leader or not view.sentinels_agree:
            return
        host, _, port = view.leader.rpartition(":")
        port_number = int(port)
        if self.leader_port is not None and port_number != self.leader_port and self.ready:
            epoch = f" at epoch {view.epoch}" if view.epoch is not None else ""
            self.reporter.event(f"leader is now {view.leader}{epoch} (was {HOST}:{self.leader_port})")
        self.leader_port = port_number if host in (HOST, "localhost") else None

    def _switched(self, data: str) -> None:
        """``+switch-master <name> <old host> <old port> <new host> <new port>``: follow it at once."""
        parts = data.split()
        if len(parts) == 5 and parts[0] == self.options.name and parts[4].isdigit():
            new_port = int(parts[4])
            self._switch_seen_at = time.monotonic()
            if new_port != self.leader_port:
                self.reporter.event(f"leader is now {parts[3]}:{new_port} (was {parts[1]}:{parts[2]})")
            self.leader_port = new_port if parts[3] in (HOST, "localhost") else None

    async def _restart_due(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.running or child.proc is None or self.stop_requested.is_set():
                continue
            if policy.restart_due(child.spec, child.state, now, self.leader_port, self.policy):
                await self._spawn(child)

    def _announce(self, view: ClusterView) -> None:
        for line in connect_text(self.options, self.root, view.leader).splitlines():
            self.reporter.say(line)
        self.reporter.table(view)
        self.reporter.say(READY_LINE)

    async def _follow_events(self) -> None:
        """Sentinel events (pub/sub) of the first sentinel that answers; the next one if it goes away."""
        while not self.stop_requested.is_set():
            for child in [c for c in self.children if c.spec.kind == "sentinel"]:
                if not child.running:
                    continue
                client = aredis.Redis(
                    host=HOST,
                    port=child.spec.port,
                    password=self.options.password or None,
                    decode_responses=True,
                    socket_connect_timeout=1,
                    health_check_interval=5,
                    retry=Retry(NoBackoff(), 0),
                )
                try:
                    async with client.pubsub() as pubsub:
                        await pubsub.psubscribe("*")
                        async for message in pubsub.listen():
                            if message.get("type") != "pmessage":
                                continue
                            channel = str(message.get("channel", ""))
                            if channel.startswith(SHOWN_EVENTS):
                                self.reporter.event(f"{child.spec.name}: {channel} {message.get('data')}")
                            if channel == "+switch-master":
                                self._switched(str(message.get("data", "")))
                except (RedisError, OSError):
                    pass
                finally:
                    with contextlib.suppress(Exception):
                        await client.aclose()
            await asyncio.sleep(1)

    # -- shutdown ------------------------------------------------------------------------------

    async def _shutdown(self) -> None:
        self.stop_requested.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        running = [c.spec for c in self.children if c.running]
        if running:
            self.reporter.event("stopping: replicas, then the leader, then the sentinels")
        by_spec = {c.spec: c for c in self.children}
        for phase in policy.stop_phases(running, self.leader_port):
            await self._stop_phase([by_spec[s] for s in phase])
        for child in self.children:
            if child.waiter is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await child.waiter
            if child.log is not None:
                child.log.close()
                child.log = None
        if running:
            self.reporter.event(f"stopped; data kept in {self.root} (kvcluster up resumes it)")
        self.reporter.close()
        if self._lock_file is not None:
            self._lock_file.close()

    async def _stop_phase(self, phase: list[Child]) -> None:
        names = ", ".join(c.spec.name for c in phase)
        for child in phase:
            assert child.proc is not None
            with contextlib.suppress(ProcessLookupError):
                child.proc.send_signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
                child.proc.terminate()
        timeout = max(STOP_TIMEOUT[c.spec.kind] for c in phase)
        waits = [asyncio.ensure_future(c.proc.wait()) for c in phase if c.proc is not None]
        forced = asyncio.ensure_future(self.force_stop.wait())
        await asyncio.wait([asyncio.gather(*waits), forced], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        forced.cancel()
        for child in phase:
            if child.running and child.proc is not None:
                self.reporter.event(f"{child.spec.name} did not stop in time: SIGKILL")
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await child.proc.wait()
        unclean = [c for c in phase if c.proc is not None and c.proc.returncode != 0]
        details = ", ".join(f"{c.spec.name} {describe_exit(c.proc.returncode if c.proc else None)}" for c in unclean)
        self.reporter.event(f"stopped {names}" + (f" ({details})" if details else ""))


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def program_name() -> str:
    """How the user can run ``kvcluster`` from this shell: ``kvcluster`` when it is on PATH, else the
    path they ran (``.venv/bin/kvcluster`` after ``make up``)."""
    import shutil

    argv0 = sys.argv[0]
    if os.path.basename(argv0) != "kvcluster":
        return "kvcluster"
    on_path = shutil.which("kvcluster")
    with contextlib.suppress(OSError):
        if on_path and os.path.samefile(on_path, argv0):
            return "kvcluster"
    relative = os.path.relpath(argv0)
    return relative if not relative.startswith("..") else os.path.abspath(argv0)


def connect_text(options: ClusterOptions, root: Path, leader: str | None) -> str:
    """How to connect: printed once the cluster is ready."""
    kv = program_name()
    sentinels = " ".join(f"{HOST}:{p}" for p in options.sentinel_ports)
    first = options.sentinel_ports[0]
    auth = f" -a {options.password} --no-auth-warning" if options.password else ""
    cli_auth = f" -a {options.password}" if options.password else ""
    leader_port = (leader or f"{HOST}:{options.port}").rpartition(":")[2]
    addresses = ", ".join(f'("{HOST}", {p})' for p in options.sentinel_ports)
    pw_sentinel = f', sentinel_kwargs={{"password": "{options.password}"}}' if options.password else ""
    pw_master = f', password="{options.password}"' if options.password else ""
    shape = f"{_count(options.replicas, 'replica')}, {_count(options.sentinels, 'sentinel')}"
    return f"""
kvcluster: 1 leader, {shape}; data and logs in {root}

  sentinels:  {sentinels}
  group:      {options.name}

  {kv} cli --sentinel {HOST}:{first} --name {options.name}{cli_auth}   # a prompt that follows the leader
  redis-cli -p {first}{auth} SENTINEL get-master-addr-by-name {options.name}
  redis-cli -p {leader_port}{auth}   # the leader right now (clients should ask the sentinels)

  from redis.sentinel import Sentinel
  sentinel = Sentinel([{addresses}], socket_timeout=1{pw_sentinel})
  leader = sentinel.master_for("{options.name}", socket_timeout=1{pw_master})
  leader.set("greeting", "hello")
  print(leader.get("greeting"))

  {kv} chaos kill-leader   # kill -9 the leader and watch the failover
  {kv} failover            # a planned failover
  {kv} status              # this view, once
  Ctrl-C stops the cluster; {kv} up resumes it.
"""


def make_reporter(view: bool, title: str) -> Reporter:
    return LiveReporter(title) if view and sys.stdout.isatty() else Reporter()
