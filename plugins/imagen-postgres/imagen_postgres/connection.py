"""Connections to the queue's database, and errors that never show a secret.

The connection string is read from the environment each time a connection is
opened and is kept nowhere else: not on the queue object (whose repr a traceback
may print), not in a message. libpq and psycopg messages name the host, port and
user but not the password; ``redact`` still scrubs the password and the whole
string from every message we raise, should a server or a parser ever echo them.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import psycopg
from psycopg import conninfo
from psycopg.rows import TupleRow

from imagen_core.config import require_env
from imagen_core.errors import ImagenError, MissingEnvError, UsageError

if TYPE_CHECKING:
    from imagen_postgres.settings import PostgresQueueConfig

Connection = psycopg.Connection[TupleRow]

# Supabase's transaction pooler (Supavisor in transaction mode) listens on 6543.
# Consecutive statements may run on different server sessions there: prepared
# statements are not found again and LISTEN hears nothing.
TRANSACTION_POOLER_PORT = "6543"

# A worker's LISTEN connection idles for hours; NAT boxes and poolers drop idle
# TCP flows silently. Keepalives make such a death visible within about a
# minute instead of the kernel's two hours. Applied unless the string sets them.
_KEEPALIVES: dict[str, str | int] = {
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}


class QueueUnavailable(ImagenError):
    """PostgreSQL could not be reached, refused the login, or dropped the connection."""


class QueueDatabaseError(ImagenError):
    """PostgreSQL refused a statement of the queue."""


def redact(text: str, secrets: list[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        # A one- or two-character password would redact ordinary letters.
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


class Database:
    """Where the queue's database is: an environment variable and a timeout."""

    def __init__(self, config: PostgresQueueConfig) -> None:
        self.variable = config.dsn_env
        self.timeout = max(2, math.ceil(config.connect_timeout_s))  # libpq: whole s, >= 2
        self.transaction_pooler = False  # known once connected

    def _dsn(self) -> str:
        try:
            return require_env(self.variable, key="dsn_env")
        except MissingEnvError:
            raise MissingEnvError(self.variable, "dsn_env", "queue.dsn_env") from None

    def _params(self, dsn: str) -> dict[str, Any]:
        try:
            return dict(conninfo.conninfo_to_dict(dsn))
        except psycopg.Error:
            # The parser's message quotes the string: say what is wrong without it.
            raise UsageError(
                f"{self.variable} does not hold a PostgreSQL connection string (its value "
                "is not shown): set it to postgresql://user:password@host:5432/dbname"
            ) from None

    def secrets(self) -> list[str]:
        """What must never appear in a message: the string and its password."""
        dsn = self._dsn()
        try:
            password = str(conninfo.conninfo_to_dict(dsn).get("password") or "")
        except psycopg.Error:
            password = ""
        found = [dsn]
        if password:
            found += [password, quote(password, safe=""), quote(password)]
        return found

    def connect(self) -> Connection:
        """A new autocommit connection; QueueUnavailable (without secrets) on failure."""
        dsn = self._dsn()
        params = self._params(dsn)
        # Ours are defaults: whatever the string itself sets wins.
        defaults: dict[str, str | int] = {
            "connect_timeout": self.timeout,
            "application_name": "imagen",
            **_KEEPALIVES,
        }
        extra = {key: value for key, value in defaults.items() if key not in params}
        pooled = str(params.get("port", "")) == TRANSACTION_POOLER_PORT
        self.transaction_pooler = pooled
        try:
            return psycopg.connect(
                conninfo.make_conninfo(dsn, **extra),
                autocommit=True,
                # Behind a transaction pooler a prepared statement may not be there
                # the next time; elsewhere psycopg prepares repeated statements.
                prepare_threshold=None if pooled else 5,
            )
        except psycopg.Error as exc:
            raise self.unavailable(exc) from None

    def describe(self, exc: BaseException) -> str:
        """One line for a psycopg error, secrets removed."""
        text = " ".join(str(exc).split()) or type(exc).__name__
        try:
            secrets = self.secrets()
        except ImagenError:
            secrets = []
        return redact(text, secrets)

    def unavailable(self, exc: BaseException) -> QueueUnavailable:
        return QueueUnavailable(
            f"cannot use the PostgreSQL queue ({self.variable}): {self.describe(exc)}"
        )
