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


def iso_week(moment: dt.datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def by_week(rows: Iterable[UsageRow]) -> list[WeekGroup]:
    """Rows grouped by ISO week, backend, model and caller, sorted by week."""
    groups: dict[tuple[str, str, str | None, str], list[UsageRow]] = {}
    for row in rows:
        key = (iso_week(row.created_at), row.backend, row.model, row.caller)
        groups.setdefault(key, []).append(row)
    out = []
    for (week, backend, model, caller), members in groups.items():
        costs = [r.cost_usd for r in members if r.cost_usd is not None]
        latencies = [r.latency_s for r in members if r.latency_s is not None]
        out.append(
            WeekGroup(
                week=week,
                backend=backend,
                model=model,
                caller=caller,
                count=len(members),
                failed=sum(r.status != "ok" for r in members),
                cost_usd=round(sum(costs), 6) if costs else None,
                mean_latency_s=round(sum(latencies) / len(latencies), 3) if latencies else None,
                cost_basis="+".join(sorted({r.cost_basis for r in members if r.cost_basis}))
                or None,
            )
        )
    return sorted(out, key=lambda g: (g.week, g.backend, g.model or "", g.caller))
