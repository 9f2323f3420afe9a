"""``kvcluster bench``: the histogram and the recorder (pure, made-up times), then short real runs
against a node and a redis-server, and one real cluster whose leader is killed with kill -9 while
the bench and ``kvcluster cli`` both follow it through the sentinels.
"""

from __future__ import annotations

import json
import math
import queue
import random
import subprocess
import threading
from pathlib import Path

import pytest
from helpers import KVCLUSTER, NodeProcess, RedisServerProcess, free_port, wait_until
from kvcluster.tools.bench_core import OUTAGE_SECONDS, Recorder, is_read, parse_ratio
from kvcluster.tools.histogram import LatencyHistogram
from test_sentinel import GROUP, Cluster

# -- the histogram -----------------------------------------------------------------------------------


def test_small_values_are_exact() -> None:
    h = LatencyHistogram.of(range(1, 101))
    assert (h.count, h.min, h.max) == (100, 1, 100)
    assert h.percentile(50) == 50 and h.percentile(99) == 99 and h.percentile(100) == 100
    assert h.percentile(0) == 1
    assert h.mean == pytest.approx(50.5)


def test_large_values_keep_their_relative_precision() -> None:
    rng = random.Random(7)
    values = sorted(rng.randrange(1, 10_000_000) for _ in range(20_000))
    h = LatencyHistogram.of(values)
    for p in (50, 90, 95, 99, 99.9):
        exact = values[max(0, math.ceil(len(values) * p / 100 - 1e-9) - 1)]
        got = h.percentile(p)
        assert exact <= got <= exact * (1 + 1 / 64) + 1, (p, exact, got)  # never below, at most 1/64 above
    assert h.max == values[-1] and h.min == values[0]


def test_bucket_ranges_tile_the_integers() -> None:
    h = LatencyHistogram(precision_bits=4)
    expected_low = 0
    for index in range(200):
        low, high = h.bucket_range(index)
        assert low == expected_low and high >= low
        assert h.bucket_index(low) == index == h.bucket_index(high)
        expected_low = high + 1


def test_merge_is_the_histogram_of_both() -> None:
    a, b = LatencyHistogram.of([1, 5, 900]), LatencyHistogram.of([3, 70_000])
    a.merge(b)
    both = LatencyHistogram.of([1, 5, 900, 3, 70_000])
    assert (a.counts, a.count, a.min, a.max, a.total) == (both.counts, both.count, both.min, both.max, both.total)


def test_empty_and_bad_input() -> None:
    h = LatencyHistogram()
    assert h.percentile(99) == 0 and h.mean == 0.0
    with pytest.raises(ValueError):
        h.record(-1)
    with pytest.raises(ValueError):
        h.percentile(101)


# -- the workload and the recorder ----------------------------------------------------------------------


def test_ratio() -> None:
    assert parse_ratio("9:1") == (9, 1) and parse_ratio("0:1") == (0, 1)
    for bad in ("1", "a:b", "0:0", "1:-1"):
        with pytest.raises(ValueError):
            parse_ratio(bad)
    ops = [is_read(i, (3, 1)) for i in range(400)]
    assert ops.count(True) == 300
    assert not any(is_read(i, (0, 1)) for i in range(10))


def test_recorder_samples_outages_and_leader_changes() -> None:
    r = Recorder(start=100.0, interval=1.0)
    r.leader_changed(100.0, "127.0.0.1:7000")  # where the run starts: not a change
    for i in range(10):
        r.success(100.0 + i * 0.1, latency_us=200 + i, read=i % 2 == 0)
    r.error(101.2, "ConnectionError", count=3)
    r.leader_changed(102.0, "127.0.0.1:7001")
    r.success(102.5, latency_us=5000, read=False)  # first success after a 1.6 s gap
    r.success(102.6, latency_us=300, read=True)
    r.finish(103.02, planned_end=102.7)  # a 0.02 s sliver: folded into the last whole sample
    s = r.to_json()
    assert (s["ops"], s["reads"], s["writes"], s["errors"]) == (12, 6, 6, 3)
    assert [x["ops"] for x in s["samples"]] == [10, 0, 2]
    assert [x["errors"] for x in s["samples"]] == [0, 3, 0]
    assert s["samples"][2]["seconds"] == pytest.approx(1.02)
    assert s["leader_changes"] == [{"t": 2.0, "from": "127.0.0.1:7000", "to": "127.0.0.1:7001"}]
    assert s["outages"] == [{"start": 0.9, "end": 2.5, "seconds": 1.6}]
    assert s["errors_by_kind"] == {"ConnectionError": 3}
    assert s["latency_ms"]["max"] == 5.0 and s["latency_ms"]["p50"] == pytest.approx(0.205, abs=0.002)
    assert s["ops_per_sec"] == pytest.approx(12 / 3.02, abs=0.1)
    # Still no success at the end of the run: an outage up to the planned end.
    r2 = Recorder(start=0.0)
    r2.success(1.0, 100, True)
    r2.finish(9.0, planned_end=5.0)
    assert [o.to_json() for o in r2.outages] == [{"start": 1.0, "end": 5.0, "seconds": 4.0}]


def test_no_outage_while_connecting_or_in_a_healthy_run() -> None:
    r = Recorder(start=0.0)
    t = 2.0  # the first success comes late (connecting): not an outage
    while t < 4.0:
        r.success(t, 100, True)
        t += OUTAGE_SECONDS / 3
    r.finish(4.0)
    assert r.outages == []


# -- real runs ----------------------------------------------------------------------------------------------


def _bench(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*KVCLUSTER, "bench", *args], capture_output=True, text=True, timeout=timeout)


def _check_sane(result: dict, duration: float) -> None:
    assert result["ops"] > 0 and result["errors"] == 0
    assert result["elapsed_s"] == pytest.approx(duration, abs=3.5)
    lat = result["latency_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["max"]
    assert sum(s["ops"] for s in result["samples"]) == result["ops"]
    assert result["ops_per_sec"] == pytest.approx(result["ops"] / result["elapsed_s"], rel=0.01)


def test_bench_json_against_a_node(tmp_path: Path) -> None:
    with NodeProcess(tmp_path) as node:
        out = _bench("-p", str(node.port), "-c", "4", "--duration", "2", "-d", "10", "--keyspace", "50", "--json")
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        _check_sane(result, 2)
        assert abs(result["reads"] - result["writes"]) <= 4  # 1:1, interleaved per connection
        assert len(result["samples"]) == 2 and result["leader_changes"] == [] and result["outages"] == []
        assert result["settings"]["target"] == {"address": f"127.0.0.1:{node.port}"}
        with node.client() as c:
            keys = c.keys("bench:*")
            assert 0 < len(keys) <= 50
            assert len(c.get(keys[0])) == 10


def test_bench_against_redis_server_with_pipeline_and_plot(tmp_path: Path) -> None:
    server = RedisServerProcess(tmp_path)
    try:
        png = tmp_path / "bench.png"
        out = _bench(
            "-p", str(server.port), "-c", "3", "-P", "8", "--ratio", "3:1", "--duration", "2", "--plot", str(png)
        )
        assert out.returncode == 0, out.stderr
        # Not a terminal: a plain line per second, then the summary.
        assert out.stdout.count(" ops/s  p99 ") >= 1
        assert "kvcluster bench: 127.0.0.1:" in out.stdout and "pipeline 8, GET:SET 3:1" in out.stdout
        assert "  throughput  " in out.stdout and "  latency     p50 " in out.stdout and "  errors      0" in out.stdout
        assert f"  plot        {png}" in out.stdout
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < len(data) < 200_000
        from PIL import Image

        with Image.open(png) as image:
            assert image.size == (900, 560)
    finally:
        server.stop()


def test_bench_against_nothing_stops_at_the_duration_and_fails() -> None:
    out = _bench("-p", str(free_port()), "-c", "2", "--duration", "1", "--json", "-q", timeout=30)
    assert out.returncode == 1 and "no operation succeeded" in out.stderr
    result = json.loads(out.stdout)
    assert result["ops"] == 0 and result["errors"] > 0 and "ConnectionError" in result["errors_by_kind"]


def test_bad_arguments() -> None:
    out = _bench("--ratio", "x", "--duration", "1")
    assert out.returncode == 2 and "expected READS:WRITES" in out.stderr
    out = _bench("-c", "0")
    assert out.returncode == 2 and "connections must be at least 1" in out.stderr


# -- a real failover, followed by the bench and by the cli --------------------------------------------------


class Lines:
    """The lines a process writes, readable with a deadline."""

    def __init__(self, stream: object):
        self.queue: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in iter(stream.readline, b""):  # type: ignore[attr-defined]
            self.queue.put(line)

    def next(self, timeout: float = 30.0) -> bytes:
        return self.queue.get(timeout=timeout).rstrip(b"\n")


def test_bench_and_cli_follow_a_kill9_failover(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    bench = cli = None
    try:
        cluster.start()
        sentinels = ",".join(f"127.0.0.1:{s.port}" for s in cluster.sentinels)
        old = cluster.leader_port()
        png = tmp_path / "failover.png"
        bench = subprocess.Popen(
            [*KVCLUSTER, "bench", "--sentinel", sentinels, "--name", GROUP, "-c", "4", "--duration", "16",
             "--interval", "0.5", "--timeout", "1", "--json", "-q", "--plot", str(png)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        cli = subprocess.Popen(
            [*KVCLUSTER, "cli", "--sentinel", sentinels, "--name", GROUP],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert cli.stdin is not None
        out, err = Lines(cli.stdout), Lines(cli.stderr)
        cli.stdin.write(b"SET before 1\n")
        cli.stdin.flush()
        assert out.next() == b"OK"
        leader = cluster.node_at(old)
        wait_until(lambda: leader.client().dbsize() > 2, 30, what="the bench writing")
        leader.kill()
        new = wait_until(lambda: (p := cluster.leader_port()) != old and p, 40, interval=0.2, what="a failover")
        cli.stdin.write(b"SET after 2\nGET before\n")
        cli.stdin.flush()
        assert out.next(60) == b"OK" and out.next() == b"1"
        notice = err.next()
        assert notice == (
            f"kvcluster cli: the leader of {GROUP} is now 127.0.0.1:{new} (was 127.0.0.1:{old}); reconnected".encode()
        )
        with cluster.node_at(new).client() as c:
            assert c.get("after") == b"2"
        cli.stdin.close()
        assert cli.wait(30) == 0

        stdout, stderr = bench.communicate(timeout=60)
        assert bench.returncode == 0, stderr
        result = json.loads(stdout)
        changes = result["leader_changes"]
        assert [(c["from"], c["to"]) for c in changes] == [(f"127.0.0.1:{old}", f"127.0.0.1:{new}")]
        after = [s for s in result["samples"] if s["t"] > changes[0]["t"] + 1]
        assert sum(s["ops"] for s in after) > 0, "the bench kept going on the new leader"
        assert result["outages"], "no operation can succeed between the kill and the promotion"
        print(f"failover: {changes}, outages {result['outages']}, errors {result['errors_by_kind']}")
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        for proc in (bench, cli):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        cluster.stop()
