"""What the commands share: --config/--debug, the help option, the request
options of generate/compare/submit, and small helpers (a session, JSON out)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from imagen_core._version import __version__

if TYPE_CHECKING:
    from imagen_core.models import Request
    from imagen_core.pipeline import Session

F = Callable[..., Any]
_debug_flag = False


def debugging() -> bool:
    return _debug_flag or os.environ.get("IMAGEN_DEBUG", "") not in ("", "0")


def reset_debug() -> None:
    global _debug_flag
    _debug_flag = False


def _set_debug(_ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    global _debug_flag
    _debug_flag = _debug_flag or value
    return value


def common(func: F) -> F:
    """--config and --debug, accepted by every command that reads the config."""
    func = click.option(
        "--config",
        "config_path",
        metavar="FILE",
        help="Config file (default: $IMAGEN_CONFIG, then $XDG_CONFIG_HOME/imagen.yaml).",
    )(func)
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show tracebacks (also IMAGEN_DEBUG=1).",
    )(func)


def is_tty() -> bool:
    return sys.stdout.isatty()


HELP_TEXT = "Show this message and exit."


def _show_help(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # Not click.version_option, whose default help text goes through gettext.
    if value and not ctx.resilient_parsing:
        click.echo(f"imagen {__version__}", color=ctx.color)
        ctx.exit()


class PlainHelp(click.Command):
    """``-h/--help`` with its text given. click builds each command's help
    option when the command runs, translating its text with gettext, which
    imports ``locale`` (about 1.4 ms, a tenth of imagen's startup budget)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["add_help_option"] = False
        super().__init__(*args, **kwargs)
        self.params.append(
            click.Option(
                ["-h", "--help"],
                is_flag=True,
                expose_value=False,
                is_eager=True,
                help=HELP_TEXT,
                callback=_show_help,
            )
        )


class PlainHelpGroup(PlainHelp, click.Group):
    """A subgroup (``imagen jobs``, ``imagen queue``…) with the same help option."""

    command_class = PlainHelp


PlainHelpGroup.group_class = PlainHelpGroup


def parse_size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    import re

    match = re.fullmatch(r"\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*", value)
    if not match:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 1024x768")
    return int(match.group(1)), int(match.group(2))


def prompt_text(words: tuple[str, ...]) -> str:
    if words == ("-",):
        return _stdin_text().strip()
    return " ".join(words)


def _stdin_text() -> str:
    """stdin as UTF-8 text, whatever the locale says; other bytes are refused
    here, naming the first bad one, before anything is generated or stored."""
    from imagen_core.errors import UsageError

    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # a text stream given in place of stdin (tests, embedding)
        return sys.stdin.read()
    data = raw.read()
    try:
        return str(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"the prompt on stdin is not UTF-8 text: byte {exc.start + 1} is "
            f"{data[exc.start : exc.start + 1]!r}; convert it first "
            "(e.g. iconv -f latin1 -t utf-8)"
        ) from None


def request_options(*, seed_help: str, steps_help: str) -> Callable[[F], F]:
    """PROMPT and the options that make a Request: shared by generate and compare."""
    options = [
        click.argument("prompt", nargs=-1, required=True),
        click.option(
            "--size",
            metavar="WxH",
            default="1024x1024",
            show_default=True,
            callback=parse_size,
            help="WIDTHxHEIGHT, each 1–8192.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help=seed_help),
        click.option(
            "--steps", type=click.IntRange(min=0), default=0, show_default=True, help=steps_help
        ),
        click.option(
            "--style", metavar="NAME", help="A style from imagen.yaml wrapping the prompt."
        ),
        click.option(
            "--negative", default="", help="What to avoid (ignored by backends without it)."
        ),
    ]

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def make_request(
    prompt: tuple[str, ...],
    size: tuple[int, int],
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    backend: str | None = None,
) -> Request:
    from imagen_core.models import Request

    return Request(
        prompt=prompt_text(prompt),
        negative=negative,
        width=size[0],
        height=size[1],
        seed=seed,
        steps=steps,
        style=style,
        backend=backend,
    )


def open_session(config_path: str | None) -> Session:
    from imagen_core.pipeline import Session

    return Session(config_path)


def echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))


def fail(message: str, code: int) -> int:
    for line in message.splitlines() or [""]:
        sys.stderr.write(f"imagen: {line}\n")
    return code


def cost_options(func: F) -> F:
    """--dry-run and --max-cost: the price before the spend (generate, compare, submit)."""
    func = click.option(
        "--max-cost",
        "max_cost",
        type=click.FloatRange(min=0),
        metavar="USD",
        help="Refuse to run when the estimated cost of this call is above USD.",
    )(func)
    return click.option(
        "--dry-run",
        is_flag=True,
        help="Print each backend's model and estimated cost; run and write nothing.",
    )(func)


def price_check(
    session: Session, requests: list[Request], dry_run: bool, max_cost: float | None
) -> bool:
    """The --dry-run report (True: stop here) and the --max-cost check of a call."""
    from imagen_core.errors import UsageError
    from imagen_core.terminal import cost_report

    estimates = [(request, session.estimate(request)) for request in requests]
    if dry_run:
        click.echo(cost_report(session, estimates))
        return True
    if max_cost is not None and len(requests) > 1:
        unknown = [r.backend for r, e in estimates if e.usd is None]
        if unknown:
            raise UsageError(
                f"--max-cost: the price of {', '.join(map(str, unknown))} is unknown, so this "
                "call cannot be held to a limit; drop --max-cost to run it"
            )
        total = sum(e.usd or 0.0 for _r, e in estimates)
        if total > max_cost:
            raise UsageError(
                f"--max-cost ${max_cost:.4f}: this call is estimated at ${total:.4f} "
                "(see --dry-run)"
            )
    return False
