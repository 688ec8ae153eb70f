"""The one way a bench script records its figures and prints them.

    from figures import Figures            # bench/ is on sys.path when a script runs
    figures = Figures("worker")
    figures.add("sqlite claim+complete, 1 process", 0.86, at_least=0.8,
                baseline="3,040 jobs/s", measured="2,610 jobs/s")
    figures.add("index built at start", 440, unit="ms")       # no target: shown only
    return figures.report()                                    # 1 when a target is missed

Each figure is a value (a ratio against a baseline measured in the same run, or a
latency where the issue's target is one) and at most one bound: ``at_most`` or
``at_least``. ``report()`` prints the script's table and, when
``IMAGEN_BENCH_FIGURES`` names a file (bench/all.py sets it), appends one JSON
line per figure there, so that ``./dev bench`` can print every script's figures
in one summary at the end.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass

ENV = "IMAGEN_BENCH_FIGURES"


@dataclass(frozen=True)
class Figure:
    bench: str
    name: str
    value: float
    unit: str = "x"
    at_most: float | None = None
    at_least: float | None = None
    baseline: str = ""
    measured: str = ""

    @property
    def met(self) -> bool | None:
        """True or False against the target, None when the figure has none."""
        if self.at_most is not None:
            return self.value <= self.at_most
        if self.at_least is not None:
            return self.value >= self.at_least
        return None

    def shown(self, value: float) -> str:
        digits = 3 if self.unit == "x" and value < 10 else 2 if abs(value) < 100 else 0
        return f"{value:.{digits}f}{'x' if self.unit == 'x' else ' ' + self.unit}"

    @property
    def target(self) -> str:
        if self.at_most is not None:
            return "<= " + self.shown(self.at_most)
        if self.at_least is not None:
            return ">= " + self.shown(self.at_least)
        return "-"

    @property
    def verdict(self) -> str:
        return {True: "ok", False: "MISSED", None: ""}[self.met]


def table(figures: list[Figure], *, with_bench: bool = False) -> str:
    head = ["benchmark", "baseline", "imagen", "figure", "target", ""]
    rows = [
        [
            (f"{f.bench}: " if with_bench else "") + f.name,
            f.baseline,
            f.measured,
            f.shown(f.value),
            f.target,
            f.verdict,
        ]
        for f in figures
    ]
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [head, *rows]
    )


class Figures:
    def __init__(self, bench: str) -> None:
        self.bench = bench
        self.figures: list[Figure] = []

    def add(
        self,
        name: str,
        value: float,
        *,
        unit: str = "x",
        at_most: float | None = None,
        at_least: float | None = None,
        baseline: str = "",
        measured: str = "",
    ) -> Figure:
        figure = Figure(self.bench, name, value, unit, at_most, at_least, baseline, measured)
        self.figures.append(figure)
        return figure

    def add_rates(
        self,
        name: str,
        baseline_rates: list[float],
        rates: list[float],
        *,
        at_least: float,
        ratio_of_medians: bool = False,
    ) -> Figure:
        """A throughput figure from rounds of interleaved runs (jobs/s, the same
        number of each): the median of each round's ratio, as a burst of load
        from elsewhere spoils one back-to-back pair, not the figure.
        ``ratio_of_medians`` also shows the ratio of the two medians."""
        base, ours = statistics.median(baseline_rates), statistics.median(rates)
        ratio = statistics.median(o / b for b, o in zip(baseline_rates, rates, strict=True))
        also = f" (ratio of medians {ours / base:.2f})" if ratio_of_medians else ""
        return self.add(
            name, ratio, at_least=at_least, baseline=f"{base:.0f}/s", measured=f"{ours:.0f}/s{also}"
        )

    def report(self) -> int:
        """Print the table, hand the figures to bench/all.py; 1 when any target is missed."""
        print(table(self.figures), flush=True)
        path = os.environ.get(ENV)
        if path:
            with open(path, "a", encoding="utf-8") as out:
                for figure in self.figures:
                    out.write(json.dumps(asdict(figure)) + "\n")
        return 1 if any(f.met is False for f in self.figures) else 0


def load(path: str) -> list[Figure]:
    with open(path, encoding="utf-8") as lines:
        return [Figure(**json.loads(line)) for line in lines if line.strip()]
