"""Usage records: one row per finished generation, and the weekly report.

A sink that can read back what it stored (``rows(since=, until=)``) is a usage
source for ``imagen usage --source NAME``; the built-in ``ledger`` is the default.
Rows hold the prompt's sha256, never the prompt.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    from collections.abc import Iterable

    from imagen_core.models import Generation
    from imagen_core.usage_report import WeekGroup


@attrs.frozen(repr=False, eq=False)
class UsageRow:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    created_at: dt.datetime  # UTC
    backend: str
    backend_type: str
    model: str | None
    latency_s: float | None
    cost_usd: float | None
    prompt_sha256: str
    caller: str
    status: str  # "ok" | "failed" | "interrupted" (killed while writing the image)
    error: str | None = None
    cost_basis: str | None = None  # "billed" | "computed" | "estimated"; None when unknown

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
            cost_basis=result.cost_basis if result else None,
        )

    def as_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["created_at"] = self.created_at.isoformat(timespec="seconds")
        return data


class UsageSource(Protocol):
    """A sink that can also read its rows back.

    It may also define ``week_groups(*, since, until) -> list[WeekGroup]``, the
    weekly report computed where the rows are (the ledger does it in SQL);
    without it the core groups the streamed rows itself (see ``week_groups``)."""

    def rows(self, *, since: dt.date | None, until: dt.date | None) -> Iterable[UsageRow]: ...


def week_groups(
    source: UsageSource, *, since: dt.date | None, until: dt.date | None
) -> list[WeekGroup]:
    """The weekly report of a source: its own ``week_groups`` when it has one."""
    own = getattr(source, "week_groups", None)
    if callable(own):
        return own(since=since, until=until)  # type: ignore[no-any-return]
    from imagen_core.usage_report import by_week

    return by_week(source.rows(since=since, until=until))


def bounds(since: dt.date | None, until: dt.date | None) -> tuple[dt.datetime | None, ...]:
    """``since`` and ``until`` as UTC instants: [since 00:00, the day after until 00:00).
    ``until`` on the last day there is (9999-12-31) has no day after: no end."""
    start = dt.datetime.combine(since, dt.time(), dt.timezone.utc) if since else None
    end = (
        dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.timezone.utc)
        if until and until < dt.date.max
        else None
    )
    return start, end
