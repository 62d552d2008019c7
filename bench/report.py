"""How the benchmarks report what they measured: nearest-rank percentiles, the p50 / p99 /
mean / max fields of their results, aligned tables, and the JSON report under
bench/results/."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def latency_fields(sorted_ms: list[float], digits: int = 3) -> dict[str, float]:
    """`p50_ms`, `p99_ms`, `mean_ms` and `max_ms` of ascending latencies, rounded to
    `digits` (NaN where there is none), named as the results' fields are."""
    if not sorted_ms:
        return dict.fromkeys(("p50_ms", "p99_ms", "mean_ms", "max_ms"), float("nan"))
    return {
        "p50_ms": round(percentile(sorted_ms, 50), digits),
        "p99_ms": round(percentile(sorted_ms, 99), digits),
        "mean_ms": round(statistics.fmean(sorted_ms), digits),
        "max_ms": round(sorted_ms[-1], digits),
    }


def print_aligned(
    header: tuple[str, ...], rows: list[tuple[str, ...]], left: tuple[int, ...] = (0,)
) -> None:
    """A table under a rule, its columns right-aligned but those in `left`."""
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]

    def join(cells: tuple[str, ...]) -> str:
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(join(header))
    print("-" * len(join(header)))
    for row in rows:
        print(join(row))


def report_header(benchmark: str, machine: dict[str, Any]) -> dict[str, Any]:
    """The first fields of a JSON report: which benchmark, when (UTC), on what machine."""
    return {
        "benchmark": benchmark,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine,
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    """The report as indented JSON at `path` (its folder made if need be), then where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"\nWrote {path}")
