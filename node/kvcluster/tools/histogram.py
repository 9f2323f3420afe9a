"""A latency histogram in the style of HdrHistogram: fixed relative precision, constant memory.

Values (integers, microseconds for the bench) below ``2**precision_bits`` get a bucket each; above
that, every power of two is split into ``2**(precision_bits - 1)`` equal buckets, so a bucket is
never wider than 1/64 of its values at the default 7 bits (1.6 %). A percentile is reported as the
highest value its bucket can hold (HdrHistogram's "highest equivalent value"), capped at the
largest value recorded, so a reported p99 is never lower than the true one and the max is exact.

Pure: no clock, no I/O; histograms merge (a run's histogram is the sum of its per-second ones).
"""

from __future__ import annotations

import math
from collections.abc import Iterable


class LatencyHistogram:
    def __init__(self, precision_bits: int = 7):
        if not 2 <= precision_bits <= 16:
            raise ValueError("precision_bits must be between 2 and 16")
        self.precision_bits = precision_bits
        self._half = 1 << (precision_bits - 1)
        self.counts: dict[int, int] = {}
        self.count = 0
        self.total = 0
        self.min: int | None = None
        self.max: int | None = None

    def bucket_index(self, value: int) -> int:
        shift = max(0, value.bit_length() - self.precision_bits)
        return shift * self._half + (value >> shift)

    def bucket_range(self, index: int) -> tuple[int, int]:
        """The lowest and highest value that land in bucket ``index``."""
        if index < 2 * self._half:
            return index, index
        shift = index // self._half - 1
        sub = index - shift * self._half
        return sub << shift, ((sub + 1) << shift) - 1

    def record(self, value: int, count: int = 1) -> None:
        if value < 0:
            raise ValueError("a latency cannot be negative")
        if count <= 0:
            return
        index = self.bucket_index(value)
        self.counts[index] = self.counts.get(index, 0) + count
        self.count += count
        self.total += value * count
        self.min = value if self.min is None else min(self.min, value)
        self.max = value if self.max is None else max(self.max, value)

    def merge(self, other: LatencyHistogram) -> None:
        if other.precision_bits != self.precision_bits:
            raise ValueError("cannot merge histograms of different precision")
        for index, count in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + count
        self.count += other.count
        self.total += other.total
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        if other.max is not None:
            self.max = other.max if self.max is None else max(self.max, other.max)

    def percentile(self, percent: float) -> int:
        """The value at or below which ``percent`` % of the recorded values lie (0 when empty)."""
        if not 0 <= percent <= 100:
            raise ValueError("percent must be between 0 and 100")
        if self.count == 0 or self.max is None or self.min is None:
            return 0
        if percent == 100:
            return self.max
        # The rank of the value, 1-based: the smallest n with n/count >= percent/100 (float noise aside).
        rank = max(1, math.ceil(self.count * percent / 100 - 1e-9))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return max(self.min, min(self.bucket_range(index)[1], self.max))
        return self.max

    def percentiles(self, percents: Iterable[float]) -> dict[float, int]:
        return {p: self.percentile(p) for p in percents}

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @classmethod
    def of(cls, values: Iterable[int], precision_bits: int = 7) -> LatencyHistogram:
        histogram = cls(precision_bits)
        for value in values:
            histogram.record(value)
        return histogram
