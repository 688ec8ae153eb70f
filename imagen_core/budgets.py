"""Budgets: a hard stop before the spend, checked and reserved in one transaction.

``budgets:`` in imagen.yaml lists limits per period (UTC day, ISO week, month),
optionally for one backend instance or one caller. Before a generation runs,
what was spent in each budget's period (the ledger's rows) plus what running
generations have reserved plus this one's estimate must stay within the limit;
the check and the reservation happen in one ``BEGIN IMMEDIATE`` transaction on
the ledger's SQLite file, so two processes racing for the last dollars cannot
both pass. The reservation is released once the generation's own ledger row
(with its real cost) is written, or when it failed; one left by a process that
died expires.

``Budget``, one block of ``budgets:``, is defined here and exported by
``imagen_core.config`` too: a config without budgets never builds the class.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Literal

import attrs

from imagen_core.config import setting
from imagen_core.errors import UsageError
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence
    from pathlib import Path

# A reservation outlives any generation; one a dead process left goes away.
RESERVATION_TTL = dt.timedelta(hours=2)

RESERVATIONS = """
CREATE TABLE IF NOT EXISTS reservations (
    id          INTEGER PRIMARY KEY,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    backend     TEXT NOT NULL,
    caller      TEXT NOT NULL,
    amount_usd  REAL NOT NULL
);
"""


def _positive_usd(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"{attribute.name} must be a number above 0, got {value}")


@attrs.frozen(repr=False, eq=False)
class Budget:
    """One limit: ``limit_usd`` per ``period``, for every generation, or those of
    one backend instance or one caller."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    period: Literal["day", "week", "month"] = setting(
        "week", help="day | week | month (UTC; weeks start on Monday)"
    )
    limit_usd: float = setting(
        1.0, validator=_positive_usd, help="the most that may be spent in one period, USD"
    )
    backend: str | None = setting(None, help="count only this backend instance")
    caller: str | None = setting(None, help="count only this caller (see imagen usage)")
    on_exceed: Literal["refuse", "wait"] = setting(
        "refuse", help="refuse the run, or (worker jobs) wait in the queue until the reset"
    )

    def applies(self, backend: str, caller: str) -> bool:
        return self.backend in (None, backend) and self.caller in (None, caller)

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The current period: its start and when the next one begins (UTC)."""
        day = now.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        if self.period == "day":
            return day, day + dt.timedelta(days=1)
        if self.period == "week":
            start = day - dt.timedelta(days=day.weekday())
            return start, start + dt.timedelta(days=7)
        start = day.replace(day=1)
        following = (start + dt.timedelta(days=32)).replace(day=1)
        return start, following

    def name(self) -> str:
        scope = "".join(
            f" for {what} {value}"
            for what, value in (("backend", self.backend), ("caller", self.caller))
            if value
        )
        return f"the {self.period}ly budget of ${self.limit_usd:.2f}{scope}".replace(
            "dayly", "daily"
        )


@attrs.frozen
class BudgetStatus:
    budget: Budget
    spent_usd: float
    reserved_usd: float
    resets: dt.datetime

    @property
    def remaining_usd(self) -> float:
        return max(0.0, self.budget.limit_usd - self.spent_usd - self.reserved_usd)

    def as_dict(self) -> dict[str, object]:
        return {
            "period": self.budget.period,
            "limit_usd": self.budget.limit_usd,
            "backend": self.budget.backend,
            "caller": self.budget.caller,
            "spent_usd": round(self.spent_usd, 6),
            "reserved_usd": round(self.reserved_usd, 6),
            "remaining_usd": round(self.remaining_usd, 6),
            "resets": self.resets.isoformat(timespec="seconds"),
        }


class BudgetExceeded(UsageError):
    """A run would go over a budget. Exit 2; HTTP front doors answer 429."""

    http_status = 429

    def __init__(self, status: BudgetStatus, estimate_usd: float | None) -> None:
        self.status, self.estimate_usd = status, estimate_usd
        budget = status.budget
        cost = (
            f"this run is estimated at ${estimate_usd:.4f}"
            if estimate_usd is not None
            else "this run's price is unknown"
        )
        spent = status.spent_usd + status.reserved_usd
        super().__init__(
            f"over budget: {budget.name()} has ${spent:.4f} spent and {cost}; "
            f"it resets {status.resets:%Y-%m-%d %H:%M} UTC (budgets: in imagen.yaml)"
        )

    @property
    def wait(self) -> bool:
        return self.status.budget.on_exceed == "wait"


class BudgetBook:
    """The budgets of a config, kept in the ledger's SQLite file."""

    def __init__(self, path: Path, budgets: Sequence[Budget]) -> None:
        self.path = path
        self.budgets = tuple(budgets)

    def _connect(self) -> sqlite3.Connection:
        import sqlite3

        from imagen_core.ledger import BUSY_TIMEOUT_S, ensure_schema

        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            ensure_schema(db)
            db.executescript(RESERVATIONS)
        except BaseException:
            db.close()
            raise
        return db

    def reserve(
        self,
        backend: str,
        caller: str,
        estimate_usd: float | None,
        *,
        now: dt.datetime | None = None,
    ) -> int | None:
        """Check every budget that applies and reserve the estimate, atomically.
        Returns the reservation's id (None when no budget applies); raises
        BudgetExceeded naming the first budget it would go over."""
        applying = [b for b in self.budgets if b.applies(backend, caller)]
        if not applying:
            return None
        from imagen_core.sqlite_locks import when_unlocked

        return when_unlocked(
            lambda: self._reserve(applying, backend, caller, estimate_usd, now), timeout_s=10.0
        )

    def _reserve(
        self,
        applying: list[Budget],
        backend: str,
        caller: str,
        estimate_usd: float | None,
        now: dt.datetime | None,
    ) -> int:
        now = now or dt.datetime.now(dt.timezone.utc)
        amount = estimate_usd or 0.0
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # one writer at a time: check, then reserve
            try:
                for budget in applying:
                    status = self._status(db, budget, now)
                    total = status.spent_usd + status.reserved_usd
                    # An unknown price passes only while something of the budget is left.
                    over = total + amount > budget.limit_usd + 1e-9 or (
                        estimate_usd is None and total >= budget.limit_usd
                    )
                    if over:
                        raise BudgetExceeded(status, estimate_usd)
                cursor = db.execute(
                    "INSERT INTO reservations (created_at, expires_at, backend, caller, amount_usd)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (_iso(now), _iso(now + RESERVATION_TTL), backend, caller, amount),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            assert cursor.lastrowid is not None
            return cursor.lastrowid
        finally:
            db.close()

    def release(self, reservation: int | None) -> None:
        """Drop a reservation (the generation's own ledger row now counts, or it failed)."""
        if reservation is None:
            return
        from imagen_core.sqlite_locks import when_unlocked

        def delete() -> None:
            db = self._connect()
            try:
                db.execute("DELETE FROM reservations WHERE id = ?", (reservation,))
            finally:
                db.close()

        when_unlocked(delete, timeout_s=10.0)

    def statuses(self, *, now: dt.datetime | None = None) -> list[BudgetStatus]:
        """Each budget's spend in its current period (``imagen usage``)."""
        now = now or dt.datetime.now(dt.timezone.utc)
        if not self.budgets:
            return []
        db = self._connect()
        try:
            return [self._status(db, budget, now) for budget in self.budgets]
        finally:
            db.close()

    def _status(self, db: sqlite3.Connection, budget: Budget, now: dt.datetime) -> BudgetStatus:
        start, resets = budget.window(now)
        scope = " AND (? IS NULL OR backend = ?) AND (? IS NULL OR caller = ?)"
        who = (budget.backend, budget.backend, budget.caller, budget.caller)
        (spent,) = db.execute(
            "SELECT COALESCE(SUM(cost_usd), 0) FROM usage WHERE created_at >= ? AND created_at < ?"
            + scope,
            (_iso(start), _iso(resets), *who),
        ).fetchone()
        (reserved,) = db.execute(
            "SELECT COALESCE(SUM(amount_usd), 0) FROM reservations WHERE expires_at > ?" + scope,
            (_iso(now), *who),
        ).fetchone()
        return BudgetStatus(budget, float(spent), float(reserved), resets)


def _iso(moment: dt.datetime) -> str:
    # The ledger's own format: comparable as text.
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
