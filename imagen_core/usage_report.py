"""The weekly usage report of ``imagen usage`` (rows come from imagen_core.usage)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable

    from imagen_core.usage import UsageRow


@attrs.frozen
class WeekGroup:
    week: str  # ISO week, "2026-W48"
    backend: str
    model: str | None
    caller: str
    count: int
    failed: int
    cost_usd: float | None  # None when no row of the group had a known cost
    mean_latency_s: float | None
    cost_basis: str | None = None  # how the costs are known: "computed", "billed+estimated", ...

    def as_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)


def iso_week(moment: dt.date) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@attrs.define
class _Tally:
    """One group's running sums: what a WeekGroup needs, without keeping the rows."""

    count: int = 0
    failed: int = 0
    cost: float = 0.0
    costs: int = 0  # rows with a known cost
    latency: float = 0.0
    latencies: int = 0
    bases: set[str] = attrs.Factory(set)  # the distinct cost bases of the rows

    def add(self, other: _Tally) -> None:
        self.count += other.count
        self.failed += other.failed
        self.cost += other.cost
        self.costs += other.costs
        self.latency += other.latency
        self.latencies += other.latencies
        self.bases |= other.bases


GroupKey = tuple[str, str, str | None, str]  # week, backend, model, caller
# A day's sums for one backend, model and caller: (day "YYYY-MM-DD" in UTC, backend,
# model, caller, count, failed, sum of known costs, how many known, sum of known
# latencies, how many known, the distinct cost bases joined by "," or None).
DayTally = tuple[str, str, str | None, str, int, int, float, int, float, int, str | None]


def _groups(tallies: dict[GroupKey, _Tally]) -> list[WeekGroup]:
    out = [
        WeekGroup(
            week=week,
            backend=backend,
            model=model,
            caller=caller,
            count=t.count,
            failed=t.failed,
            cost_usd=round(t.cost, 6) if t.costs else None,
            mean_latency_s=round(t.latency / t.latencies, 3) if t.latencies else None,
            cost_basis="+".join(sorted(t.bases)) or None,
        )
        for (week, backend, model, caller), t in tallies.items()
    ]
    return sorted(out, key=lambda g: (g.week, g.backend, g.model or "", g.caller))


def by_week(rows: Iterable[UsageRow]) -> list[WeekGroup]:
    """Rows grouped by ISO week, backend, model and caller, sorted by week.

    Memory grows with the groups, not the rows: a source's rows can be streamed."""
    tallies: dict[GroupKey, _Tally] = {}
    for row in rows:
        key = (iso_week(row.created_at), row.backend, row.model, row.caller)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        tally.count += 1
        tally.failed += row.status != "ok"
        if row.cost_usd is not None:
            tally.cost += row.cost_usd
            tally.costs += 1
        if row.latency_s is not None:
            tally.latency += row.latency_s
            tally.latencies += 1
        if row.cost_basis:
            tally.bases.add(row.cost_basis)
    return _groups(tallies)


def by_week_from_days(days: Iterable[DayTally]) -> list[WeekGroup]:
    """Weekly groups from per-day sums a source computed itself (the ledger, in SQL)."""
    import datetime as dt

    weeks: dict[str, str] = {}
    tallies: dict[GroupKey, _Tally] = {}
    for day, backend, model, caller, count, failed, cost, costs, latency, latencies, basis in days:
        week = weeks.get(day)
        if week is None:
            week = weeks[day] = iso_week(dt.date.fromisoformat(day))
        key = (week, backend, model, caller)
        tally = tallies.get(key)
        if tally is None:
            tally = tallies[key] = _Tally()
        bases = {b for b in basis.split(",") if b} if basis else set()
        tally.add(_Tally(count, failed, cost, costs, latency, latencies, bases))
    return _groups(tallies)
