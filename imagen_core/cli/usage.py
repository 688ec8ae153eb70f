"""``imagen usage``: what was generated and what it cost."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from imagen_core.cli.options import PlainHelp, common, echo_json, open_session

if TYPE_CHECKING:
    from collections.abc import Iterable

    from imagen_core.usage import UsageRow


def _parse_date(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-05-01") from None


@click.command(cls=PlainHelp)
@click.option(
    "--since",
    metavar="YYYY-MM-DD",
    callback=_parse_date,
    help="Only rows on or after this UTC date.",
)
@click.option(
    "--until",
    metavar="YYYY-MM-DD",
    callback=_parse_date,
    help="Only rows on or before this UTC date.",
)
@click.option("--raw", is_flag=True, help="One line per generation instead of weekly groups.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--chart", is_flag=True, help="Spend per week as a bar chart, stacked by backend.")
@click.option(
    "--budgets",
    "budgets_only",
    is_flag=True,
    help="Only the budgets: spent, reserved, limit and what is left this period.",
)
@click.option(
    "--source",
    default="ledger",
    show_default=True,
    metavar="NAME",
    help="A sink that stores usage (e.g. supabase).",
)
@common
def usage(
    since: Any,
    until: Any,
    raw: bool,
    as_json: bool,
    chart: bool,
    budgets_only: bool,
    source: str,
    config_path: str | None,
) -> None:
    """Show what was generated and what it cost, by ISO week, backend, model and caller.

    Every generation (every backend, failed ones too) is recorded by the ledger
    sink; prompts are stored as their sha256 only.
    """
    from imagen_core.terminal import budget_report, spend_chart, usage_report
    from imagen_core.usage import week_groups

    if since and until and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    session = open_session(config_path)
    statuses = session.budget_book().statuses() if session.config.budgets else []
    if budgets_only:
        if as_json:
            echo_json([status.as_dict() for status in statuses])
        else:
            click.echo(budget_report(statuses) if statuses else "no budgets: in imagen.yaml")
        return
    usage_source = session.source(source)
    if raw:
        rows = usage_source.rows(since=since, until=until)
        write_json_rows(rows) if as_json else write_usage_rows(rows)
    else:
        groups = week_groups(usage_source, since=since, until=until)
        if as_json:
            echo_json([g.as_dict() for g in groups])
            return
        click.echo(spend_chart(groups) if chart else usage_report(groups))
    if statuses and not as_json:
        click.echo("\n" + budget_report(statuses))


def write_json_rows(rows: Iterable[UsageRow]) -> None:
    """A JSON array of the rows, written as they are read: the same text as
    ``json.dumps(list, indent=2)``, without holding the list."""
    import json

    out = sys.stdout
    first = True
    for row in rows:
        text = json.dumps(row.as_dict(), indent=2, default=str).replace("\n", "\n  ")
        out.write(("[\n  " if first else ",\n  ") + text)
        first = False
    out.write("[]\n" if first else "\n]\n")
    out.flush()


def write_usage_rows(rows: Iterable[UsageRow]) -> None:
    """One line per generation, written as they are read (the first at once)."""
    from imagen_core.terminal import usage_lines

    out = sys.stdout
    for count, line in enumerate(usage_lines(rows)):
        out.write(line + "\n")
        if count < 2:
            out.flush()  # the header and the first row at once, the rest buffered
    out.flush()
