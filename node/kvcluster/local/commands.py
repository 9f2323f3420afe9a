"""``kvcluster up``, ``kvcluster status``, ``kvcluster failover`` and ``kvcluster chaos``."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import socket
import sys
import time
from pathlib import Path

from kvcluster.local.plan import OPTIONS_FILE, ClusterOptions
from kvcluster.local.status import ClusterView, client_for, collect, parse_address, plain_table, render
from redis.exceptions import RedisError

DEFAULT_DIR = ".kvcluster"


def _load_options(directory: Path) -> ClusterOptions | None:
    try:
        return ClusterOptions.from_json((directory / OPTIONS_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        raise SystemExit(f"kvcluster: {directory / OPTIONS_FILE}: {e}") from None


# -- up -------------------------------------------------------------------------------------------


def up_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kvcluster up",
        description=(
            "Run a local highly available cluster in the foreground: a leader, replicas and sentinels as child "
            "processes, with a live status view. Ctrl-C stops it; run it again to resume the same cluster from "
            "DIR (its saved settings are the defaults then)."
        ),
        allow_abbrev=False,
    )
    d = ClusterOptions()
    parser.add_argument("--replicas", type=int, metavar="N", help=f"replicas besides the leader (default {d.replicas})")
    parser.add_argument("--sentinels", type=int, metavar="N", help=f"sentinels (default {d.sentinels})")
    parser.add_argument(
        "--port", type=int, metavar="PORT", help=f"first node port; nodes use consecutive ports (default {d.port})"
    )
    parser.add_argument(
        "--sentinel-port", type=int, metavar="PORT", help=f"first sentinel port (default {d.sentinel_port})"
    )
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"data directory (default {DEFAULT_DIR})")
    parser.add_argument(
        "--durability",
        choices=["async", "semi-sync"],
        help=f"async: like Redis; semi-sync: a write is acknowledged once a replica has it (default {d.durability})",
    )
    parser.add_argument("--password", metavar="PW", help="password for clients, nodes and sentinels (default: none)")
    parser.add_argument("--name", metavar="NAME", help=f"the sentinels' group name for the cluster (default {d.name})")
    parser.add_argument(
        "--down-after-milliseconds",
        type=int,
        metavar="MS",
        help=f"silence before the sentinels consider a node down (default {d.down_after_milliseconds})",
    )
    parser.add_argument(
        "--failover-timeout",
        type=int,
        metavar="MS",
        help=f"bound of each failover step, ms (default {d.failover_timeout})",
    )
    parser.add_argument("--no-view", action="store_true", help="plain log lines instead of the live view")
    ns = parser.parse_args(argv)
    root = Path(ns.dir).absolute()
    saved = _load_options(root)
    try:
        options = (saved or ClusterOptions()).merged(
            replicas=ns.replicas,
            sentinels=ns.sentinels,
            port=ns.port,
            sentinel_port=ns.sentinel_port,
            durability=ns.durability,
            password=ns.password,
            name=ns.name,
            down_after_milliseconds=ns.down_after_milliseconds,
            failover_timeout=ns.failover_timeout,
        )
    except ValueError as e:
        print(f"kvcluster up: {e}", file=sys.stderr)
        return 2
    if saved is not None and (saved.port, saved.sentinel_port, saved.name) != (
        options.port,
        options.sentinel_port,
        options.name,
    ):
        print(
            f"kvcluster up: {root} holds a cluster on ports {saved.port}/{saved.sentinel_port} named "
            f"{saved.name!r}; use another --dir for a different cluster",
            file=sys.stderr,
        )
        return 2
    from kvcluster.local.supervisor import Supervisor, make_reporter

    reporter = make_reporter(not ns.no_view, f"kvcluster up · {options.name}")
    return asyncio.run(Supervisor(options, root, reporter).run())


# -- finding a cluster: --sentinel / --name / --dir ---------------------------------------------


def _add_target_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sentinel",
        action="append",
        metavar="HOST:PORT",
        help="a sentinel (repeat, or comma-separate); default: the local cluster's in --dir, else 127.0.0.1:26379",
    )
    parser.add_argument("--name", help="the sentinels' group name (default: the local cluster's, else mymaster)")
    parser.add_argument("--password", help="password of the sentinels and nodes (default: the local cluster's)")
    parser.add_argument("--dir", default=DEFAULT_DIR, help=f"a local cluster's directory (default {DEFAULT_DIR})")


class Target:
    """The cluster a command talks to: ``--sentinel`` if given, else the local one in ``--dir``."""

    def __init__(self, ns: argparse.Namespace):
        self.options = None if ns.sentinel else _load_options(Path(ns.dir))
        if ns.sentinel:
            self.sentinels = [
                "{}:{}".format(*parse_address(part)) for item in ns.sentinel for part in item.split(",") if part
            ]
        elif self.options is not None:
            self.sentinels = [f"{h}:{p}" for h, p in self.options.sentinel_addresses]
        else:
            self.sentinels = ["127.0.0.1:26379"]
        self.name = ns.name or (self.options.name if self.options else "mymaster")
        self.password = ns.password if ns.password is not None else (self.options.password if self.options else "")

    async def view(self) -> ClusterView:
        local_nodes = [f"127.0.0.1:{p}" for p in self.options.node_ports] if self.options else []
        view = await collect(self.sentinels, self.name, self.password, extra_nodes=local_nodes)
        if self.options is not None:
            names = {f"127.0.0.1:{p}": f"node-{p}" for p in self.options.node_ports}
            names |= {f"127.0.0.1:{p}": f"sentinel-{p}" for p in self.options.sentinel_ports}
            for row in view.processes:
                row.name = names.get(row.address, row.name)
        return view


# -- status ---------------------------------------------------------------------------------------


def status_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kvcluster status",
        description="Print a cluster's status once, as its sentinels and nodes report it.",
        allow_abbrev=False,
    )
    _add_target_args(parser)
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    ns = parser.parse_args(argv)
    target = Target(ns)
    view = asyncio.run(target.view())
    if ns.json:
        sys.stdout.write(view.to_json())
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(render(view))
    else:
        sys.stdout.write(plain_table(view))
    if not view.sentinels or all(s.names_leader is None for s in view.sentinels):
        print(
            f"kvcluster status: no sentinel at {' '.join(target.sentinels)} knows group {target.name!r}",
            file=sys.stderr,
        )
        return 1
    return 0


# -- failover and chaos ---------------------------------------------------------------------------


async def _leader(target: Target) -> tuple[str | None, int | None]:
    view = await collect(target.sentinels, target.name, target.password)
    return view.leader, view.epoch


async def _wait_new_leader(target: Target, old: str, timeout: float) -> tuple[str, int | None]:
    """The new leader, as soon as a sentinel names one other than ``old`` that serves as leader.

    That is when clients following the sentinels (redis-py's Sentinel) move; the other sentinels
    catch up within a few hello periods.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = await collect(target.sentinels, target.name, target.password)
        named = {s.names_leader for s in view.sentinels if s.names_leader not in (None, old)}
        for node in view.nodes:
            if node.address in named and node.role == "leader" and node.health == "ok":
                return node.address, node.epoch
        await asyncio.sleep(0.2)
    raise TimeoutError(f"no new leader within {timeout:.0f}s (the sentinels still name {old})")


def _add_wait_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the new leader (default 60)")
    parser.add_argument("--no-wait", action="store_true", help="return at once, without waiting for the new leader")


def failover_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kvcluster failover",
        description=(
            "A planned failover (SENTINEL FAILOVER): writes pause briefly, the best replica is promoted under a new "
            "epoch, nothing acknowledged is lost. Waits for and prints the new leader."
        ),
        allow_abbrev=False,
    )
    _add_target_args(parser)
    _add_wait_args(parser)
    ns = parser.parse_args(argv)
    target = Target(ns)
    return asyncio.run(_failover(target, ns.timeout, ns.no_wait))


async def _failover(target: Target, timeout: float, no_wait: bool) -> int:
    old, epoch = await _leader(target)
    if old is None:
        print(f"kvcluster failover: no sentinel at {' '.join(target.sentinels)} knows group {target.name!r}")
        return 1
    started = time.monotonic()
    error: str | None = None
    for address in target.sentinels:
        host, port = parse_address(address)
        client = client_for(host, port, target.password, timeout=5)
        try:
            await client.execute_command("SENTINEL", "FAILOVER", target.name)
            error = None
            break
        except (RedisError, OSError) as e:
            error = str(e)
            if not isinstance(e, (OSError, ConnectionError)) and "Connection" not in type(e).__name__:
                break  # an answer (NOGOODSLAVE, INPROG...), not an unreachable sentinel
        finally:
            await client.aclose()
    if error is not None:
        print(f"kvcluster failover: {error}")
        return 1
    print(f"failover of {target.name} started (leader {old}, epoch {epoch})", flush=True)
    if no_wait:
        return 0
    try:
        new, new_epoch = await _wait_new_leader(target, old, timeout)
    except TimeoutError as e:
        print(f"kvcluster failover: {e}")
        return 1
    print(f"leader is now {new} (epoch {new_epoch}), was {old}; took {time.monotonic() - started:.1f}s")
    return 0


def chaos_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="kvcluster chaos",
        description="Break things on purpose, to watch the cluster heal.",
        allow_abbrev=False,
    )
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    kill = sub.add_parser(
        "kill-leader",
        help="kill -9 the current leader's process (a node on this machine), then wait for the failover",
        description=(
            "Find the leader through the sentinels, read its process id from INFO server, and kill it with SIGKILL "
            "(only a kvcluster node on this machine). Then wait for and print the new leader."
        ),
    )
    _add_target_args(kill)
    _add_wait_args(kill)
    ns = parser.parse_args(argv)
    return asyncio.run(_kill_leader(Target(ns), ns.timeout, ns.no_wait))


def _is_local_host(host: str) -> bool:
    import psutil

    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    local = {a.address.split("%")[0] for nics in psutil.net_if_addrs().values() for a in nics}
    return all(ipaddress.ip_address(a).is_loopback or a in local for a in addresses)


async def _kill_leader(target: Target, timeout: float, no_wait: bool) -> int:
    import psutil

    leader, epoch = await _leader(target)
    if leader is None:
        print(f"kvcluster chaos: no sentinel at {' '.join(target.sentinels)} knows group {target.name!r}")
        return 1
    host, port = parse_address(leader)
    if not _is_local_host(host):
        print(f"kvcluster chaos: the leader {leader} is not on this machine; kill-leader only kills local nodes")
        return 1
    client = client_for(host, port, target.password, timeout=5)
    try:
        pid = int((await client.info("server"))["process_id"])
    except (RedisError, OSError, KeyError, ValueError) as e:
        print(f"kvcluster chaos: could not read the leader's process id from {leader}: {e}")
        return 1
    finally:
        await client.aclose()
    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except psutil.Error as e:
        print(f"kvcluster chaos: process {pid} of {leader}: {e}")
        return 1
    if "kvcluster" not in cmdline:
        print(f"kvcluster chaos: process {pid} ({cmdline[:80]}) is not a kvcluster node; not killing it")
        return 1
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    print(f"killed the leader {leader} (pid {pid}, epoch {epoch}) with SIGKILL", flush=True)
    if no_wait:
        return 0
    try:
        new, new_epoch = await _wait_new_leader(target, leader, timeout)
    except TimeoutError as e:
        print(f"kvcluster chaos: {e}")
        return 1
    print(f"leader is now {new} (epoch {new_epoch}); the sentinels took {time.monotonic() - started:.1f}s")
    return 0
