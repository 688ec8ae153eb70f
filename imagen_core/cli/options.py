"""What the commands share: --config/--debug, the help option, the request
options of generate/compare/submit, and small helpers (a session, JSON out)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from imagen_core._version import __version__

if TYPE_CHECKING:
    from imagen_core.models import Generation, ImageInput, Request
    from imagen_core.pipeline import Session
    from imagen_core.terminal import StepProgress

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


def parse_size(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> tuple[int, int] | None:
    if value is None:
        return None
    # What the regex r"\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*" matches, without
    # compiling one on every start (0.2 ms).
    sides = value.translate(_SIZE_SEPARATORS).split("x")
    if len(sides) == 2:
        width, height = (side.strip() for side in sides)
        if all(0 < len(side) <= 9 and side.isdecimal() for side in (width, height)):
            return int(width), int(height)
    raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 1024x768")


_SIZE_SEPARATORS = str.maketrans("X×", "xx")


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


def parse_strength(_ctx: click.Context, _param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0.0 <= number <= 1.0:  # NaN fails too
        raise click.BadParameter(
            f"{value!r} is not a number from 0 to 1 (0 keeps the input image, 1 ignores it)"
        )
    return number


DEFAULT_SIZE = (1024, 1024)


def request_options(*, seed_help: str, steps_help: str) -> Callable[[F], F]:
    """PROMPT and the options that make a Request: shared by generate, compare
    and submit."""
    options = [
        click.argument("prompt", nargs=-1, required=True),
        click.option(
            "--size",
            metavar="WxH",
            default=None,
            callback=parse_size,
            help="WIDTHxHEIGHT, each 1–8192.  [default: 1024x1024; with --image, its size]",
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
        click.option(
            "--image",
            "-i",
            "images",
            metavar="PATH",
            multiple=True,
            help="An input image (PNG, JPEG, WebP): the first is the image to edit (or "
            "the init image), further ones are references. '-' reads one from stdin "
            "(its bytes, or the path a previous `imagen generate` printed). Repeatable.",
        ),
        click.option(
            "--mask",
            metavar="PATH",
            help="Inpaint: white = repaint, black = keep; the size of the first --image.",
        ),
        click.option(
            "--strength",
            metavar="0..1",
            callback=parse_strength,
            help="How far from the input image to go (img2img denoise): 0 keeps it, "
            "1 ignores it.  [default: the backend's]",
        ),
    ]

    def apply(func: F) -> F:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def make_request(
    prompt: tuple[str, ...],
    size: tuple[int, int] | None,
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    backend: str | None = None,
    *,
    images: tuple[str, ...] = (),
    mask: str | None = None,
    strength: float | None = None,
) -> Request:
    """The Request of the shared options; input images are read and checked
    here, before any backend is built (InvalidInput names the file)."""
    from imagen_core.errors import InvalidInput, UsageError
    from imagen_core.models import Request

    if prompt == ("-",) and "-" in (*images, mask):
        raise UsageError(
            "stdin can be read once: give the prompt as words when --image or --mask is '-'"
        )
    if strength is not None and not images:
        raise InvalidInput("--strength needs an input image to start from: give --image")
    inputs: tuple[ImageInput, ...] = ()
    if images or mask is not None:
        # Reading and checking files: imported only when some are given.
        from imagen_core.inputs import load_inputs

        inputs = load_inputs(images, mask)
    if size is None:
        size = (inputs[0].width, inputs[0].height) if inputs else DEFAULT_SIZE
    return Request(
        prompt=prompt_text(prompt),
        negative=negative,
        width=size[0],
        height=size[1],
        seed=seed,
        steps=steps,
        style=style,
        backend=backend,
        inputs=inputs,
        strength=strength,
    )


def open_session(config_path: str | None) -> Session:
    from imagen_core.pipeline import Session

    return Session(config_path)


class Writing(NamedTuple):
    """Where and how one image is written (--output, --no-sidecar, ...); None
    leaves the choice to imagen.yaml. A NamedTuple: the CLI imports no attrs
    before a command runs."""

    output: str | None
    sidecar: bool | None
    metadata: bool | None
    preview: bool | None
    cloud: bool | None


def writing_options(func: F) -> F:
    """--output, --no-sidecar, --no-metadata, --preview/--no-preview and
    --no-cloud (generate, again), given to the command as one ``writing``."""

    @functools.wraps(func)
    def command(
        *args: Any,
        output: str | None,
        no_sidecar: bool,
        no_metadata: bool,
        preview: bool | None,
        no_cloud: bool,
        **kwargs: Any,
    ) -> Any:
        off = {True: False, False: None}
        writing = Writing(output, off[no_sidecar], off[no_metadata], preview, off[no_cloud])
        return func(*args, writing=writing, **kwargs)

    options = [
        click.option(
            "--output",
            "-o",
            metavar="PATH",
            help="Write here instead of the naming template (a folder keeps the template).",
        ),
        click.option("--no-sidecar", is_flag=True, help="Do not write the JSON sidecar."),
        click.option(
            "--no-metadata",
            is_flag=True,
            help="Do not write the prompt, seed and model into the image file "
            "(the sidecar keeps them).",
        ),
        click.option(
            "--preview/--no-preview", default=None, help="Force or suppress the preview window."
        ),
        click.option("--no-cloud", is_flag=True, help="Skip cloud sinks for this call."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def generate_and_print(
    session: Session,
    request: Request,
    writing: Writing,
    *,
    max_cost_usd: float | None = None,
) -> Generation:
    """One image as ``imagen generate`` and ``imagen again`` make it: a progress
    bar on a terminal (a warning erases it and gets a line of its own), the
    written path on stdout, and on a terminal the summary line on stderr."""
    from imagen_core.notices import warn

    progress: StepProgress | None = None
    if is_tty():  # the terminal module (bar, summary) only when a person may watch
        from imagen_core.terminal import StepProgress

        instance = session.config.backend(request.backend, session.registry)
        progress = StepProgress.for_terminal(instance.name)

        def warn_clear(message: str) -> None:
            assert progress is not None
            progress.close()  # a warning gets a line of its own, not the bar's end
            warn(message)

        session.warn = warn_clear
    try:
        record = session.generate(
            request,
            output=writing.output,
            sidecar=writing.sidecar,
            preview=writing.preview,
            cloud=writing.cloud,
            progress=progress,
            metadata=writing.metadata,
            max_cost_usd=max_cost_usd,
        )
    finally:
        if progress is not None:
            progress.close()
    click.echo(str(record.path))
    if is_tty():
        from imagen_core.terminal import summary_line

        click.echo(summary_line(record), err=True)
    return record


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
    """The --dry-run report (True: stop here) and the --max-cost check of a call
    (one request's --max-cost is checked by ``Session.generate`` itself)."""
    if not dry_run and (max_cost is None or len(requests) < 2):
        # Nothing asks for a price: no estimate (a local GPU's reads the ledger).
        return False
    from imagen_core.errors import UsageError

    estimates = [(request, session.estimate(request)) for request in requests]
    if dry_run:
        from imagen_core.terminal import cost_report

        click.echo(cost_report(session, estimates))
        return True
    if max_cost is not None:
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
