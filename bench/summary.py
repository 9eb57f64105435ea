"""One row per target: what was measured, its baseline from the same run, their ratio, the
target and whether it was met. Each benchmark's report prints its rows' verdicts; `run_all`
prints all rows as one table at the end."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NO_RATIO = "—"


@dataclass(frozen=True)
class Row:
    benchmark: str
    measured: str
    baseline: str
    ratio: str
    target: str
    met: bool

    @property
    def result(self) -> str:
        return "met" if self.met else "MISSED"

    def verdict(self) -> str:
        return f"target {self.target}: {self.result}"


def print_table(rows: Sequence[Row]) -> None:
    header = ("benchmark", "measured", "baseline (same run)", "ratio", "target", "result")
    cells = [
        header,
        *((r.benchmark, r.measured, r.baseline, r.ratio, r.target, r.result) for r in rows),
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    for line in cells:
        padded = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print(" | ".join(padded).rstrip())
