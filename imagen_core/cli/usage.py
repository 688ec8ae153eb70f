"""``imagen usage``: what was generated and what it cost."""

from __future__ import annotations

from typing import Any

import click

from imagen_core.cli.options import PlainHelp, common, echo_json, open_session


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
    from imagen_core.terminal import budget_report, spend_chart, usage_report, usage_rows
    from imagen_core.usage_report import by_week

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
    rows = list(session.source(source).rows(since=since, until=until))
    if as_json:
        echo_json([r.as_dict() for r in rows] if raw else [g.as_dict() for g in by_week(rows)])
        return
    if chart:
        click.echo(spend_chart(by_week(rows)))
    else:
        click.echo(usage_rows(rows) if raw else usage_report(by_week(rows)))
    if statuses:
        click.echo("\n" + budget_report(statuses))
