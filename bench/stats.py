"""Latency summaries (count, p50, p95, p99, max) and their markdown rendering."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default); q in [0, 100]."""
    if not sorted_values:
        return math.nan
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    fraction = rank - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(frozen=True)
class Summary:
    """One measured quantity; latencies in milliseconds."""

    name: str
    count: int
    expected: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    throughput_per_s: float | None = None
    note: str = ""

    @property
    def complete(self) -> bool:
        return self.count == self.expected


def summarize(
    name: str,
    samples_ms: Sequence[float],
    *,
    expected: int | None = None,
    throughput_per_s: float | None = None,
    note: str = "",
) -> Summary:
    ordered = sorted(samples_ms)
    return Summary(
        name=name,
        count=len(ordered),
        expected=len(ordered) if expected is None else expected,
        p50_ms=percentile(ordered, 50),
        p95_ms=percentile(ordered, 95),
        p99_ms=percentile(ordered, 99),
        max_ms=ordered[-1] if ordered else math.nan,
        throughput_per_s=throughput_per_s,
        note=note,
    )


def _ms(value: float) -> str:
    if math.isnan(value):
        return "–"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


def markdown_table(rows: Sequence[Summary]) -> str:
    lines = [
        "| measurement | count | p50 ms | p95 ms | p99 ms | max ms | throughput | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        count = str(row.count) if row.complete else f"{row.count} of {row.expected}"
        rate = "" if row.throughput_per_s is None else f"{row.throughput_per_s:.1f}/s"
        cells = [
            row.name,
            count,
            _ms(row.p50_ms),
            _ms(row.p95_ms),
            _ms(row.p99_ms),
            _ms(row.max_ms),
            rate,
            row.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
