"""The queue's DDL: ``schema.sql`` (package data), for the default schema or another.

The file is written for the schema ``imagen`` so that people can read it and run
it with psql as it is; for another schema its object names are rewritten. Only
the names this file creates are touched (comments and strings that merely
mention imagen stay), and the schema name was validated as a plain identifier
(``settings.SCHEMA_NAME``), so the result needs no quoting.

    python -m imagen_postgres.schema [--schema NAME]   # print the SQL
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import resources

from imagen_postgres.settings import SCHEMA_NAME

DEFAULT_SCHEMA = "imagen"
# "imagen" as the schema of an object the file creates, as the schema itself
# (``create schema if not exists imagen;``) or as the prefix of the channel.
_NAMES = re.compile(
    r"\bimagen(?=\.(?:jobs|jobs_queued_backend|inputs|json_whole_between|valid_inputs"
    r"|valid_request|notify_job)\b"
    r"|_jobs\b|;)"
)


def channel(schema: str) -> str:
    """The NOTIFY channel of the queue in ``schema``: ``imagen_jobs`` by default."""
    return f"{schema}_jobs"


def sql(schema: str = DEFAULT_SCHEMA) -> str:
    """The DDL creating (or migrating) the queue in ``schema``; idempotent."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"not a plain lower-case SQL name: {schema!r}")
    text = resources.files("imagen_postgres").joinpath("schema.sql").read_text("utf-8")
    return text if schema == DEFAULT_SCHEMA else _NAMES.sub(schema, text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m imagen_postgres.schema",
        description="Print the SQL that creates the imagen job queue (psql -f - runs it).",
    )
    parser.add_argument("--schema", default=DEFAULT_SCHEMA, help="schema name (default: imagen)")
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(sql(args.schema))
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
