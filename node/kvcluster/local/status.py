"""A cluster's state as its sentinels and nodes report it: collected (asyncio), rendered (rich) or as JSON.

:func:`collect` asks every sentinel who leads the group and whom it sees, then every node it
names (plus any local node ``kvcluster up`` runs) for ``INFO``. :class:`ClusterView` is plain data;
:func:`render` and :meth:`ClusterView.to_json` are pure functions of it, and :func:`ready_problems`
says what still keeps a freshly started cluster from being ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

QUERY_TIMEOUT = 1.5


def client_for(host: str, port: int, password: str = "", timeout: float | None = QUERY_TIMEOUT) -> aredis.Redis:
    """A redis-py client that fails fast: no retries (redis-py's default retries a refused connection for
    seconds), so a dead process shows as down at once instead of stalling the whole poll."""
    return aredis.Redis(
        host=host,
        port=port,
        password=password or None,
        socket_timeout=timeout,
        socket_connect_timeout=QUERY_TIMEOUT,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


@dataclass
class ProcessView:
    """One row of the view: a node or a sentinel."""

    kind: str  # node | sentinel
    address: str  # host:port
    name: str = ""  # node-7000 under `kvcluster up`, else the address
    role: str = "?"  # leader | replica | sentinel | ? (unreachable)
    reachable: bool = False
    health: str = "down"
    epoch: int | None = None
    offset: int | None = None
    lag_bytes: int | None = None
    lag_seconds: int | None = None
    ops_per_sec: int | None = None
    memory_bytes: int | None = None
    pid: int | None = None
    replicates: str | None = None  # a replica's leader, host:port
    restarts: int | None = None  # only known to `kvcluster up`
    # sentinels: whom they name as leader, and how many replicas / other sentinels they see
    names_leader: str | None = None
    sees_replicas: int | None = None
    sees_sentinels: int | None = None
    note: str = ""

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.rsplit(":", 1)[1])


@dataclass
class ClusterView:
    group: str
    leader: str | None = None  # host:port most sentinels name
    epoch: int | None = None  # the group's config epoch (the leader's promotion)
    sentinels_agree: bool = False
    processes: list[ProcessView] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    collected_at: float = 0.0

    @property
    def nodes(self) -> list[ProcessView]:
        return [p for p in self.processes if p.kind == "node"]

    @property
    def sentinels(self) -> list[ProcessView]:
        return [p for p in self.processes if p.kind == "sentinel"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "leader": self.leader,
            "epoch": self.epoch,
            "sentinels_agree": self.sentinels_agree,
            "nodes": [_row_dict(p) for p in self.nodes],
            "sentinels": [_row_dict(p) for p in self.sentinels],
            "events": list(self.events),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _row_dict(p: ProcessView) -> dict[str, Any]:
    row = dataclasses.asdict(p)
    if p.kind == "node":
        for key in ("names_leader", "sees_replicas", "sees_sentinels"):
            row.pop(key)
    else:
        for key in ("offset", "lag_bytes", "lag_seconds", "memory_bytes", "replicates"):
            row.pop(key)
    return row


def parse_address(text: str, default_port: int = 26379) -> tuple[str, int]:
    """``host:port``, ``host`` or ``:port`` (IPv6 in brackets: ``[::1]:26379``)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    host, sep, port = text.rpartition(":")
    if not sep:
        return text, default_port
    return host or "127.0.0.1", int(port)


class Clients:
    """One redis-py asyncio client per address, reused between polls (each reconnects by itself)."""

    def __init__(self, password: str = ""):
        self.password = password
        self._clients: dict[str, aredis.Redis] = {}

    def get(self, address: str) -> aredis.Redis:
        client = self._clients.get(address)
        if client is None:
            host, port = parse_address(address)
            client = client_for(host, port, self.password)
            self._clients[address] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            with contextlib.suppress(Exception):
                await client.aclose()
        self._clients.clear()


async def _sentinel_row(clients: Clients, address: str, group: str) -> tuple[ProcessView, dict[str, Any] | None]:
    row = ProcessView(kind="sentinel", address=address, name=address, role="sentinel")
    client = clients.get(address)
    try:
        info = await client.info()
        row.reachable = True
        row.pid = _int(info.get("process_id"))
        row.epoch = _int(info.get("kvcluster_current_epoch"))
        master = await client.sentinel_master(group)
    except (RedisError, OSError) as e:
        if row.reachable:
            row.health = "no group" if "No such master" in str(e) else "error"
            row.note = str(e)[:60]
        return row, None
    row.names_leader = f"{master['ip']}:{master['port']}"
    row.sees_replicas = _int(master.get("num-slaves"))
    row.sees_sentinels = _int(master.get("num-other-sentinels"))
    row.health = "tilt" if info.get("sentinel_tilt") else "ok"
    flags = str(master.get("flags", ""))
    if "o_down" in flags:
        row.note = "leader objectively down"
    elif "s_down" in flags:
        row.note = "leader subjectively down"
    if "failover_in_progress" in flags:
        row.note = f"failover: {master.get('failover-state', 'in progress')}"
    return row, master


async def _replicas_seen(clients: Clients, address: str, group: str) -> list[str]:
    with contextlib.suppress(RedisError, OSError):
        return [f"{r['ip']}:{r['port']}" for r in await clients.get(address).sentinel_slaves(group)]
    return []


async def _node_row(clients: Clients, address: str) -> tuple[ProcessView, dict[str, Any]]:
    row = ProcessView(kind="node", address=address, name=address)
    try:
        info = await clients.get(address).execute_command("INFO", "server", "replication", "stats", "memory")
    except (RedisError, OSError) as e:
        row.note = "unreachable" if isinstance(e, (ConnectionError, OSError)) or "Connection" in str(e) else str(e)[:60]
        if "LOADING" in str(e):
            row.reachable, row.health, row.note = True, "loading", ""
        return row, {}
    row.reachable = True
    row.pid = _int(info.get("process_id"))
    row.epoch = _int(info.get("kvcluster_epoch"))
    row.ops_per_sec = _int(info.get("instantaneous_ops_per_sec"))
    row.memory_bytes = _int(info.get("used_memory"))
    if info.get("role") == "master":
        row.role = "leader"
        row.offset = _int(info.get("master_repl_offset"))
        row.health = "fenced" if info.get("kvcluster_fenced") else "ok"
    else:
        row.role = "replica"
        row.offset = _int(info.get("slave_repl_offset"))
        link_up = info.get("master_link_status") == "up"
        row.health = "ok" if link_up else ("syncing" if info.get("master_sync_in_progress") else "link down")
        row.replicates = f"{info.get('master_host')}:{info.get('master_port')}"
        row.note = f"of {row.replicates}"
    return row, info


def _majority(answers: Iterable[str | None]) -> tuple[str | None, bool]:
    given = [a for a in answers if a is not None]
    if not given:
        return None, False
    best = max(set(given), key=given.count)
    return best, len(set(given)) == 1


async def collect(
    sentinels: Sequence[str],
    group: str,
    password: str = "",
    extra_nodes: Sequence[str] = (),
    clients: Clients | None = None,
) -> ClusterView:
    """Ask the sentinels, then the nodes they name (and ``extra_nodes``), in parallel."""
    own = clients is None
    clients = clients or Clients(password)
    try:
        results = await asyncio.gather(*(_sentinel_row(clients, a, group) for a in sentinels))
        view = ClusterView(group=group, collected_at=time.time())
        view.leader, view.sentinels_agree = _majority(r.names_leader for r, _ in results)
        masters = [m for _, m in results if m is not None]
        epochs = [_int(m.get("config-epoch")) for m in masters]
        view.epoch = max((e for e in epochs if e is not None), default=None)
        node_addresses: list[str] = list(dict.fromkeys([*extra_nodes]))
        if view.leader and view.leader not in node_addresses:
            node_addresses.append(view.leader)
        answering = [r.address for r, m in results if m is not None]
        if answering:
            for replica in await _replicas_seen(clients, answering[0], group):
                if replica not in node_addresses:
                    node_addresses.append(replica)
        node_results = await asyncio.gather(*(_node_row(clients, a) for a in node_addresses))
        leader_info = next((info for row, info in node_results if row.address == view.leader and info), {})
        replica_lag = _replica_lag(leader_info)
        for row, _ in node_results:
            if row.role == "replica" and row.address in replica_lag:
                acked, row.lag_seconds = replica_lag[row.address]
                # The replica's own offset is fresher than the one it last acknowledged (once a second).
                applied = row.offset if row.offset is not None else acked
                leader_offset = _int(leader_info.get("master_repl_offset"))
                if leader_offset is not None and applied is not None:
                    row.lag_bytes = max(0, leader_offset - applied)
            if row.role == "leader" and view.leader and row.address != view.leader:
                row.note = "not the sentinels' leader"
        view.processes = [r for r, _ in node_results] + [r for r, _ in results]
        return view
    finally:
        if own:
            await clients.close()


def _replica_lag(leader_info: Mapping[str, Any]) -> dict[str, tuple[int | None, int | None]]:
    """address -> (acknowledged offset, lag seconds), from the leader's ``slaveN`` lines."""
    out: dict[str, tuple[int | None, int | None]] = {}
    for key, value in leader_info.items():
        if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict):
            out[f"{value.get('ip')}:{value.get('port')}"] = (_int(value.get("offset")), _int(value.get("lag")))
    return out


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def ready_problems(view: ClusterView, replicas: int, sentinels: int) -> list[str]:
    """What keeps the cluster from being ready (empty: ready): for ``kvcluster up`` at start."""
    problems = []
    answering = [s for s in view.sentinels if s.names_leader is not None]
    if len(answering) < sentinels:
        problems.append(f"{len(answering)} of {sentinels} sentinels answer")
    elif not view.sentinels_agree:
        problems.append("the sentinels do not agree on the leader yet")
    leader = next((n for n in view.nodes if n.address == view.leader), None)
    if leader is None or leader.role != "leader" or leader.health != "ok":
        problems.append(f"leader {view.leader or '?'} not serving yet")
    online = [n for n in view.nodes if n.role == "replica" and n.health == "ok" and n.replicates == view.leader]
    if len(online) < replicas:
        problems.append(f"{len(online)} of {replicas} replicas online")
    for s in answering:
        if (s.sees_sentinels or 0) < sentinels - 1 or (s.sees_replicas or 0) < replicas:
            problems.append(f"sentinel {s.address} sees {s.sees_sentinels} sentinels, {s.sees_replicas} replicas")
            break
    return problems


# -- rendering ----------------------------------------------------------------------------------

HEALTH_STYLE = {"ok": "green", "down": "bold red", "fenced": "bold red", "tilt": "yellow", "link down": "yellow"}


def human_bytes(n: int | None) -> str:
    if n is None:
        return ""
    size = float(n)
    for unit in ("B", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"  # pragma: no cover - the loop always returns


def _cell(value: int | None) -> str:
    return "" if value is None else str(value)


def render(view: ClusterView, title: str = "", events: int = 8) -> RenderableType:
    """The status view: a table of processes, then the last ``events`` event lines."""
    from rich import box

    show_restarts = any(p.restarts for p in view.processes)  # a column only once something restarted
    # Under `kvcluster up` the names say the port (node-7000) and every host is 127.0.0.1: no address column.
    named_by_port = all(p.name == f"{p.kind}-{p.port}" for p in view.processes)
    show_address = not (named_by_port and len({p.host for p in view.processes}) == 1)
    names = {p.address: p.name or p.address for p in view.processes}
    heading = title or f"kvcluster · group {view.group}"
    leader_name = names.get(view.leader, view.leader) if view.leader else None
    leader = f"leader [bold]{view.leader}[/]" if view.leader else "[bold red]no leader known[/]"
    if leader_name and leader_name != view.leader:
        leader += f" ({leader_name})"
    epoch = f" · epoch {view.epoch}" if view.epoch is not None else ""
    agree = "" if view.sentinels_agree or not view.leader else " · [yellow]sentinels disagree[/]"
    table = Table(
        title=f"{heading} · {leader}{epoch}{agree}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        expand=False,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = [("process", "left"), ("role", "left")]
    if show_address:
        columns.append(("address", "left"))
    columns += [("epoch", "right"), ("offset", "right"), ("lag", "right"), ("ops/s", "right")]
    columns += [("memory", "right"), ("health", "left"), ("pid", "right")]
    if show_restarts:
        columns.append(("restarts", "right"))
    columns.append(("notes", "left"))
    for column, justify in columns:
        # Notes wrap, and never vanish on a narrow terminal.
        table.add_column(
            column, justify=justify, no_wrap=column != "notes", min_width=20 if column == "notes" else None
        )  # type: ignore[arg-type]
    for p in view.processes:
        role_style = {"leader": "bold cyan", "replica": "cyan", "sentinel": "magenta"}.get(p.role, "red")
        lag = ""
        if p.lag_bytes is not None:
            lag = human_bytes(p.lag_bytes) + (f" {p.lag_seconds}s" if p.lag_seconds else "")
        note = p.note
        if p.replicates and note in ("", f"of {p.replicates}"):
            note = f"of {names.get(p.replicates, p.replicates)}"
        if p.kind == "sentinel" and p.names_leader is not None:
            seen = f"{p.sees_replicas} replicas, {p.sees_sentinels} peers"
            named = "" if p.names_leader == view.leader else f"names {names.get(p.names_leader, p.names_leader)}, "
            note = f"{named}{seen}" + (f"; {p.note}" if p.note else "")
        cells: list[RenderableType] = [p.name or p.address, Text(p.role, style=role_style)]
        if show_address:
            cells.append(p.address)
        cells += [_cell(p.epoch), _cell(p.offset), lag, _cell(p.ops_per_sec), human_bytes(p.memory_bytes)]
        cells += [Text(p.health, style=HEALTH_STYLE.get(p.health, "yellow")), _cell(p.pid)]
        if show_restarts:
            cells.append(_cell(p.restarts))
        cells.append(note)
        table.add_row(*cells)
    parts: list[RenderableType] = [table]
    if view.events and events:
        lines = Text()
        for line in view.events[-events:]:
            lines.append(line + "\n", style="bold yellow" if "switch-master" in line or "leader is now" in line else "")
        parts.append(Text("events", style="bold"))
        parts.append(lines)
    return Group(*parts)


def plain_table(view: ClusterView) -> str:
    """The view as plain text (for pipes and logs), one line per process."""
    from rich.console import Console

    console = Console(width=160, color_system=None, force_terminal=False, record=False)
    with console.capture() as capture:
        console.print(render(view, events=0))
    return "\n".join(line.rstrip() for line in capture.get().splitlines()) + "\n"
