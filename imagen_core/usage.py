"""Usage records: one row per finished generation, and the weekly report.

A sink that can read back what it stored (``rows(since=, until=)``) is a usage
source for ``imagen usage --source NAME``; the built-in ``ledger`` is the default.
Rows hold the prompt's sha256, never the prompt.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

import attrs

if TYPE_CHECKING:
    from collections.abc import Iterable

    from imagen_core.models import Generation


@attrs.frozen
class UsageRow:
    created_at: dt.datetime  # UTC
    backend: str
    backend_type: str
    model: str | None
    latency_s: float | None
    cost_usd: float | None
    prompt_sha256: str
    caller: str
    status: str  # "ok" | "failed"
    error: str | None = None

    @classmethod
    def of(cls, generation: Generation, caller: str) -> UsageRow:
        result = generation.result
        return cls(
            created_at=generation.started_at.astimezone(dt.timezone.utc),
            backend=generation.backend,
            backend_type=generation.backend_type,
            model=result.model if result else None,
            latency_s=result.latency_s if result else None,
            cost_usd=result.cost_usd if result else None,
            prompt_sha256=generation.request.prompt_sha256,
            caller=caller,
            status="ok" if generation.ok else "failed",
            error=generation.error,
        )

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["created_at"] = self.created_at.isoformat(timespec="seconds")
        return data


class UsageSource(Protocol):
    """A sink that can also read its rows back."""

    def rows(self, *, since: dt.date | None, until: dt.date | None) -> Iterable[UsageRow]: ...


def bounds(since: dt.date | None, until: dt.date | None) -> tuple[dt.datetime | None, ...]:
    """``since`` and ``until`` as UTC instants: [since 00:00, the day after until 00:00)."""
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc) if since else None
    end = (
        dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        if until
        else None
    )
    return start, end


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
            )
        )
    return sorted(out, key=lambda g: (g.week, g.backend, g.model or "", g.caller))
