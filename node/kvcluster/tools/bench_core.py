"""The pure parts of ``kvcluster bench``: the workload mix, and what a run records.

:class:`Recorder` is fed events with the time they happened (seconds on any monotonic clock) and
turns them into what the bench reports: totals, latency percentiles, per-interval samples (ops/s,
errors/s, latency), the moments the leader changed, and the outages (stretches in which no
operation succeeded, as during a failover). No clock and no I/O, so it is tested with made-up
times.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kvcluster.tools.histogram import LatencyHistogram

PERCENTS = (50.0, 95.0, 99.0)
# No success for this long counts as an outage (a healthy run answers in well under a millisecond).
OUTAGE_SECONDS = 0.25


def parse_ratio(text: str) -> tuple[int, int]:
    """``--ratio 9:1`` -> (9, 1): reads to writes. Raises ValueError."""
    read, sep, write = text.partition(":")
    if not sep or not read.strip().isdigit() or not write.strip().isdigit():
        raise ValueError(f"expected READS:WRITES such as 1:1 or 9:1, got {text!r}")
    reads, writes = int(read), int(write)
    if reads + writes == 0:
        raise ValueError("the ratio cannot be 0:0")
    return reads, writes


def is_read(op_number: int, ratio: tuple[int, int]) -> bool:
    """Operation ``op_number`` of a connection is a read: spreads reads and writes evenly by the ratio."""
    reads, writes = ratio
    return op_number % (reads + writes) < reads


@dataclass
class Sample:
    """One interval of the run."""

    start: float  # seconds since the run started
    length: float
    reads: int = 0
    writes: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def ops(self) -> int:
        return self.reads + self.writes

    def to_json(self) -> dict[str, Any]:
        ms = {p: self.latency.percentile(p) / 1000 for p in PERCENTS}
        return {
            "t": round(self.start, 3),
            "seconds": round(self.length, 3),
            "ops": self.ops,
            "ops_per_sec": round(self.ops / self.length, 1) if self.length else 0.0,
            "reads": self.reads,
            "writes": self.writes,
            "errors": self.errors,
            "errors_per_sec": round(self.errors / self.length, 1) if self.length else 0.0,
            "p50_ms": ms[50.0],
            "p95_ms": ms[95.0],
            "p99_ms": ms[99.0],
            "max_ms": (self.latency.max or 0) / 1000,
        }


@dataclass(frozen=True)
class LeaderChange:
    at: float  # seconds since the start
    old: str | None
    new: str

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.at, 3), "from": self.old, "to": self.new}


@dataclass(frozen=True)
class Outage:
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def to_json(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "seconds": round(self.seconds, 3)}


class Recorder:
    def __init__(self, start: float, interval: float = 1.0):
        if interval <= 0:
            raise ValueError("the sample interval must be positive")
        self.start = start
        self.interval = interval
        self.samples: list[Sample] = []
        self.latency = LatencyHistogram()
        self.reads = self.writes = self.errors = 0
        self.error_kinds: Counter[str] = Counter()
        self.leader_changes: list[LeaderChange] = []
        self.outages: list[Outage] = []
        self.leader: str | None = None
        # Outages are counted between successes: connecting at the start is not one.
        self._last_success: float | None = None
        self.end: float | None = None

    def _sample(self, now: float) -> Sample:
        index = max(0, int((now - self.start) // self.interval))
        while len(self.samples) <= index:
            self.samples.append(Sample(len(self.samples) * self.interval, self.interval))
        return self.samples[index]

    def success(self, now: float, latency_us: int, read: bool) -> None:
        sample = self._sample(now)
        sample.latency.record(latency_us)
        self.latency.record(latency_us)
        if read:
            sample.reads += 1
            self.reads += 1
        else:
            sample.writes += 1
            self.writes += 1
        last = self._last_success
        if last is not None and now - last >= OUTAGE_SECONDS:
            self.outages.append(Outage(last - self.start, now - self.start))
        self._last_success = now if last is None else max(last, now)

    def error(self, now: float, kind: str, count: int = 1) -> None:
        self._sample(now).errors += count
        self.errors += count
        self.error_kinds[kind] += count

    def leader_changed(self, now: float, leader: str) -> None:
        """The sentinels name ``leader``; the first call only notes where the run started."""
        if leader == self.leader:
            return
        if self.leader is not None:
            self.leader_changes.append(LeaderChange(now - self.start, self.leader, leader))
        self.leader = leader

    def finish(self, now: float, planned_end: float | None = None) -> None:
        """The run is over at ``now``; an outage still going on is counted up to ``planned_end``."""
        self.end = now
        self._sample(now - 1e-9)  # samples up to the end, even idle ones
        if self.samples:  # the last interval may be cut short
            last = self.samples[-1]
            last.length = max(1e-9, min(self.interval, (now - self.start) - last.start))
            if len(self.samples) > 1 and last.length < self.interval / 2:
                # A sliver (replies still arriving after the end): its rate would be noise; fold it in.
                self.samples.pop()
                previous = self.samples[-1]
                previous.length += last.length
                previous.reads += last.reads
                previous.writes += last.writes
                previous.errors += last.errors
                previous.latency.merge(last.latency)
        last, until = self._last_success, min(now, planned_end if planned_end is not None else now)
        if last is not None and until - last >= OUTAGE_SECONDS:
            self.outages.append(Outage(last - self.start, until - self.start))

    @property
    def ops(self) -> int:
        return self.reads + self.writes

    @property
    def elapsed(self) -> float:
        return (self.end if self.end is not None else self.start) - self.start

    def summary(self) -> dict[str, Any]:
        """Totals and percentiles (milliseconds), without the samples."""
        elapsed = self.elapsed
        return {
            "elapsed_s": round(elapsed, 3),
            "ops": self.ops,
            "reads": self.reads,
            "writes": self.writes,
            "errors": self.errors,
            "ops_per_sec": round(self.ops / elapsed, 1) if elapsed > 0 else 0.0,
            "latency_ms": {
                "min": (self.latency.min or 0) / 1000,
                "mean": round(self.latency.mean / 1000, 3),
                **{f"p{p:g}": self.latency.percentile(p) / 1000 for p in PERCENTS},
                "max": (self.latency.max or 0) / 1000,
            },
            "errors_by_kind": dict(self.error_kinds.most_common()),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "samples": [s.to_json() for s in self.samples],
            "leader_changes": [c.to_json() for c in self.leader_changes],
            "outages": [o.to_json() for o in self.outages],
        }
