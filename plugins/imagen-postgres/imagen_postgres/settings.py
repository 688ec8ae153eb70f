"""The ``queue:`` block of imagen.yaml for ``type: postgres``. The connection
string is never part of it: the block names the environment variable holding it."""

from __future__ import annotations

import re

import attrs

from imagen_core.config import setting
from imagen_core.validators import positive

# Unquoted, lower case and short enough that "<schema>_jobs" (the NOTIFY channel)
# is still a PostgreSQL identifier (63 bytes): the name goes into SQL text and
# must mean the same thing quoted or not.
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,57}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _ENV_NAME.fullmatch(value):
        # Never echo the value: the likeliest mistake is a pasted connection
        # string, password included, and this message goes to the terminal.
        raise ValueError(
            f"{attribute.name} must name an environment variable (like IMAGEN_DATABASE_URL) "
            "that holds the connection string; the string itself never goes into imagen.yaml"
        )


def _schema(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not SCHEMA_NAME.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be a plain lower-case SQL name (letters, digits, '_', "
            f"at most 58 characters, not starting with a digit), got {value!r}"
        )


@attrs.frozen
class PostgresQueueConfig:
    """Keys of ``queue: {type: postgres, ...}``; every key has a default."""

    dsn_env: str = setting(
        "IMAGEN_DATABASE_URL",
        validator=_env_name,
        help="environment variable holding the connection string "
        "(postgresql://user:password@host:5432/dbname); never the string itself",
    )
    schema: str = setting(
        "imagen",
        validator=_schema,
        help="schema of the jobs table; its NOTIFY channel is <schema>_jobs",
    )
    connect_timeout_s: float = setting(
        10.0,
        validator=positive,
        help="seconds to wait for a connection (libpq counts whole seconds, at least 2)",
    )
