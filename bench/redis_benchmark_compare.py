#!/usr/bin/env python3
"""Benchmark a kvcluster node against a real redis-server, in the same run.

Starts a Debian ``redis-server`` (no persistence) and a ``kvcluster node`` on free
ports in temporary directories, drives both with ``redis-benchmark`` (SET and GET,
50 clients, pipelines of 1 and 16, values of 3 and 1024 bytes), and prints
throughput, p50/p99 latency and server CPU time per request for both, with the
ratios kvcluster/redis. Runs alternate between the two servers (and the order
flips each repetition) so background load on a shared machine hits both alike.

CPU time per request is the server process's utime+stime delta (``/proc/<pid>/stat``)
over a run divided by the requests of that run: it includes everything the server
does while it serves (parsing, dispatch, encoding, syscalls), and nothing of
redis-benchmark's own work.

Usage::

    python bench/redis_benchmark_compare.py            # full run, a few minutes
    python bench/redis_benchmark_compare.py --quick    # ~30 s smoke run
    python bench/redis_benchmark_compare.py --json out.json

Both servers are stopped by PID when the script ends, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")

# The goals from the issue (unpipelined and pipelined), checked at the end.
GOAL_P1_THROUGHPUT_RATIO = 0.80
GOAL_P1_CPU_RATIO = 2.0
GOAL_P1_P99_MS = 2.0
GOAL_P16_THROUGHPUT_RATIO = 0.40


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class Run:
    """One redis-benchmark invocation against one server."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    cpu_seconds: float


@dataclass
class Case:
    """One workload (command, pipeline depth, value size) measured on both servers."""

    test: str
    pipeline: int
    data_size: int
    requests: int
    runs: dict[str, list[Run]] = field(default_factory=lambda: {"redis": [], "kvcluster": []})

    def summary(self, server: str) -> dict[str, float]:
        runs = self.runs[server]
        total_requests = sum(r.requests for r in runs)
        return {
            "ops_per_sec": statistics.median(r.rps for r in runs),
            "p50_ms": statistics.median(r.p50_ms for r in runs),
            "p99_ms": statistics.median(r.p99_ms for r in runs),
            "cpu_us_per_req": 1e6 * sum(r.cpu_seconds for r in runs) / total_requests if total_requests else 0.0,
        }

    def ratios(self) -> dict[str, float]:
        redis, kv = self.summary("redis"), self.summary("kvcluster")
        return {k: (kv[k] / redis[k] if redis[k] else float("inf")) for k in redis}


# -- processes -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces; fields after it are space separated.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


def wait_ready(server: Server, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.proc.returncode}; see {server.log_path}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1) as s:
                s.sendall(b"*1\r\n$4\r\nPING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise TimeoutError(f"{server.name} not ready on port {server.port} after {timeout}s: {last!r}")


def start_redis(workdir: Path, redis_server: str) -> Server:
    port = free_port()
    log_path = workdir / "redis.log"
    cmd = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    cmd += ["--daemonize", "no", "--dir", str(workdir), "--logfile", str(log_path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=workdir)
    return Server("redis", proc, port, log_path)


def start_kvcluster(workdir: Path, extra: list[str]) -> Server:
    port = free_port()
    log_path = workdir / "node.log"
    cmd = [sys.executable, "-m", "kvcluster.cli", "node", "--port", str(port), "--bind", "127.0.0.1"]
    # The same persistence as the redis-server it is compared with: none.
    cmd += ["--dir", str(workdir), "--admin-port", "0", "--save", "", "--appendonly", "no", *extra]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    return Server("kvcluster", proc, port, log_path)


def stop(server: Server) -> None:
    proc = server.proc
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


# -- redis-benchmark ---------------------------------------------------------------


def run_benchmark(server: Server, case: Case, clients: int, keyspace: int, benchmark: str) -> Run:
    cmd = [benchmark, "-h", "127.0.0.1", "-p", str(server.port), "-t", case.test.lower()]
    cmd += ["-c", str(clients), "-n", str(case.requests), "-P", str(case.pipeline), "-d", str(case.data_size)]
    if keyspace > 0:
        cmd += ["-r", str(keyspace)]
    cmd += ["--csv"]
    before = cpu_seconds(server.pid)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    after = cpu_seconds(server.pid)
    if out.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed against {server.name}: {out.stderr.strip()}")
    row = parse_csv(out.stdout, case.test)
    return Run(
        rps=float(row["rps"]),
        p50_ms=float(row["p50_latency_ms"]),
        p99_ms=float(row["p99_latency_ms"]),
        requests=case.requests,
        cpu_seconds=after - before,
    )


def parse_csv(text: str, test: str) -> dict[str, str]:
    """The row for ``test`` from ``redis-benchmark --csv`` (Redis 7: rps, avg, min, p50, p95, p99, max)."""
    # Warnings (e.g. "WARNING: Could not fetch server CONFIG") may precede the header.
    lines = [line for line in text.splitlines() if line.startswith('"')]
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        if row.get("test", "").upper() == test.upper():
            return row
    raise RuntimeError(f"no {test} row in redis-benchmark output:\n{text}")


# -- report --------------------------------------------------------------------------


def fmt_rate(x: float) -> str:
    return f"{x / 1000:,.0f}k"


def print_table(cases: list[Case]) -> None:
    header = (
        f"{'test':<4} {'-P':>3} {'-d':>5} | {'redis ops/s':>11} {'kv ops/s':>9} {'ratio':>6} | "
        f"{'p50 ms r/kv':>13} | {'p99 ms r/kv':>13} | {'CPU us/req r/kv':>16} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for case in cases:
        r, k, q = case.summary("redis"), case.summary("kvcluster"), case.ratios()
        print(
            f"{case.test:<4} {case.pipeline:>3} {case.data_size:>5} | "
            f"{fmt_rate(r['ops_per_sec']):>11} {fmt_rate(k['ops_per_sec']):>9} {q['ops_per_sec']:>6.2f} | "
            f"{r['p50_ms']:>6.3f}/{k['p50_ms']:<6.3f} | {r['p99_ms']:>6.3f}/{k['p99_ms']:<6.3f} | "
            f"{r['cpu_us_per_req']:>7.2f}/{k['cpu_us_per_req']:<8.2f} {q['cpu_us_per_req']:>6.2f}"
        )


def check_goals(cases: list[Case]) -> list[dict[str, object]]:
    results: list[dict[str, object]] = []
    for case in cases:
        k, q = case.summary("kvcluster"), case.ratios()
        label = f"{case.test} -P {case.pipeline} -d {case.data_size}"
        if case.pipeline == 1:
            checks = [
                ("throughput >= 80% of redis", q["ops_per_sec"] >= GOAL_P1_THROUGHPUT_RATIO, q["ops_per_sec"]),
                ("CPU/req <= 2x redis", q["cpu_us_per_req"] <= GOAL_P1_CPU_RATIO, q["cpu_us_per_req"]),
                ("p99 <= 2 ms", k["p99_ms"] <= GOAL_P1_P99_MS, k["p99_ms"]),
            ]
        else:
            checks = [("throughput >= 40% of redis", q["ops_per_sec"] >= GOAL_P16_THROUGHPUT_RATIO, q["ops_per_sec"])]
        for name, ok, value in checks:
            results.append({"case": label, "goal": name, "ok": bool(ok), "value": round(value, 3)})
    return results


def machine_info(redis_server: str) -> dict[str, str]:
    cpu_model = ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for mod in ("uvloop", "hiredis"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = "not installed"
    redis_version = subprocess.run([redis_server, "--version"], capture_output=True, text=True).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model,
        "python": platform.python_version(),
        "uvloop": versions["uvloop"],
        "hiredis": versions["hiredis"],
        "redis": redis_version,
        "loadavg_start": " ".join(os.getloadavg().__repr__().strip("()").split(", ")),
    }


# -- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short run (~30 s): fewer requests, one repetition")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--clients", type=int, default=50, help="parallel connections (-c), default 50")
    p.add_argument("--requests", type=int, help="requests per run at -P 1 (default 250000, quick 100000)")
    p.add_argument("--pipelined-requests", type=int, help="requests per run at -P 16 (default 1500000, quick 600000)")
    p.add_argument("--repeat", type=int, help="runs per server and case; medians are reported (default 3, quick 1)")
    p.add_argument("--pipelines", default="1,16", help="pipeline depths, comma separated (default 1,16)")
    p.add_argument("--sizes", default="3,1024", help="value sizes in bytes, comma separated (default 3,1024)")
    p.add_argument("--tests", default="SET,GET", help="commands, comma separated (default SET,GET)")
    p.add_argument("--keyspace", type=int, default=100000, help="-r: random keys per run (0 = one key)")
    p.add_argument("--redis-server", default=shutil.which("redis-server") or "redis-server")
    p.add_argument("--redis-benchmark", default=shutil.which("redis-benchmark") or "redis-benchmark")
    p.add_argument("--node-arg", action="append", default=[], help="extra argument for kvcluster node (repeatable)")
    args = p.parse_args(argv)
    if args.requests is None:
        args.requests = 100_000 if args.quick else 250_000
    if args.pipelined_requests is None:
        args.pipelined_requests = 600_000 if args.quick else 1_500_000
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for tool in (args.redis_server, args.redis_benchmark):
        if shutil.which(tool) is None:
            print(f"{tool} not found: install Debian's redis-server and redis-tools (make deps)", file=sys.stderr)
            return 2
    info = machine_info(args.redis_server)
    print("# " + ", ".join(f"{k}: {v}" for k, v in info.items()))
    cases = [
        Case(test, pipeline, size, args.requests if pipeline == 1 else args.pipelined_requests)
        for pipeline in (int(x) for x in args.pipelines.split(","))
        for size in (int(x) for x in args.sizes.split(","))
        for test in (t.strip().upper() for t in args.tests.split(","))
    ]
    servers: list[Server] = []
    started = time.monotonic()
    # SIGTERM unwinds like Ctrl-C, so the finally below still stops both servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="kvbench-") as tmp:
        try:
            Path(tmp, "redis").mkdir()
            Path(tmp, "node").mkdir()
            servers.append(start_redis(Path(tmp, "redis"), args.redis_server))
            servers.append(start_kvcluster(Path(tmp, "node"), args.node_arg))
            for server in servers:
                wait_ready(server)
            print("# " + "; ".join(f"{s.name} pid {s.pid} port {s.port}" for s in servers), flush=True)
            for i, case in enumerate(cases):
                for rep in range(args.repeat):
                    order = servers if (i + rep) % 2 == 0 else servers[::-1]
                    for server in order:
                        run = run_benchmark(server, case, args.clients, args.keyspace, args.redis_benchmark)
                        case.runs[server.name].append(run)
                        print(
                            f"  {case.test} -P {case.pipeline} -d {case.data_size} {server.name:<9} "
                            f"{run.rps:>11,.0f} ops/s  p50 {run.p50_ms:.3f} ms  p99 {run.p99_ms:.3f} ms  "
                            f"CPU {1e6 * run.cpu_seconds / run.requests:.2f} us/req",
                            flush=True,
                        )
        finally:
            for server in servers:
                stop(server)
    elapsed = time.monotonic() - started
    print()
    print_table(cases)
    goals = check_goals(cases)
    print()
    for g in goals:
        print(f"  {'PASS' if g['ok'] else 'FAIL'}  {g['case']:<18} {g['goal']:<28} ({g['value']})")
    print(f"\n# {elapsed:.0f} s, load average at end: {os.getloadavg()[0]:.2f}")
    if args.json:
        doc = {
            "machine": info,
            "settings": {
                "clients": args.clients,
                "requests_p1": args.requests,
                "requests_pipelined": args.pipelined_requests,
                "repeat": args.repeat,
                "keyspace": args.keyspace,
                "node_args": args.node_arg,
            },
            "cases": [
                {
                    "test": c.test,
                    "pipeline": c.pipeline,
                    "data_size": c.data_size,
                    "requests": c.requests,
                    "redis": c.summary("redis"),
                    "kvcluster": c.summary("kvcluster"),
                    "ratios": c.ratios(),
                    "runs": {name: [asdict(r) for r in runs] for name, runs in c.runs.items()},
                }
                for c in cases
            ],
            "goals": goals,
            "elapsed_seconds": round(elapsed, 1),
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"# wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
