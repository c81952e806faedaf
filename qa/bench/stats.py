"""Latency summaries: medians and tail percentiles of millisecond samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Latency:
    count: int
    p50: float
    p95: float
    p99: float
    mean: float

    @classmethod
    def of(cls, milliseconds: Sequence[float]) -> Latency:
        if not len(milliseconds):
            nan = float("nan")
            return cls(0, nan, nan, nan, nan)
        values = np.asarray(milliseconds, dtype=np.float64)
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return cls(len(values), float(p50), float(p95), float(p99), float(values.mean()))

    def figures(self, prefix: str) -> dict[str, float | int]:
        """Flat report keys: `{prefix}_p50_ms`, `_p95_ms`, `_p99_ms`, `_mean_ms`, `_count`."""
        return {
            f"{prefix}_p50_ms": round(self.p50, 2),
            f"{prefix}_p95_ms": round(self.p95, 2),
            f"{prefix}_p99_ms": round(self.p99, 2),
            f"{prefix}_mean_ms": round(self.mean, 2),
            f"{prefix}_count": self.count,
        }


def median(values: Sequence[float]) -> float:
    return float(np.median(values)) if len(values) else float("nan")


def ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or theirs is None or not theirs or theirs != theirs or ours != ours:
        return None
    return round(ours / theirs, 3)
