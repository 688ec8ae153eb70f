"""The ``imagen`` command line: parse, call the library, print.

Only click is imported at start; each command imports what it needs when it
runs, and plugins (which may add commands) load only when a command or the full
``--help`` needs them. ``imagen --version`` loads no plugin at all.
"""

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


def _debugging() -> bool:
    return _debug_flag or os.environ.get("IMAGEN_DEBUG", "") not in ("", "0")


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


def _tty() -> bool:
    return sys.stdout.isatty()


HELP_TEXT = "Show this message and exit."


def _show_help(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(ctx.get_help(), color=ctx.color)
        ctx.exit()


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
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


class ImagenGroup(PlainHelpGroup):
    """A group that adds plugin commands (``register_commands``) on first need."""

    _plugins_from: object = None
    _builtin: dict[str, click.Command] | None = None

    def _add_plugin_commands(self) -> None:
        from imagen_core.plugins import get_plugin_manager

        pm = get_plugin_manager()
        key = (id(pm), frozenset(map(id, pm.get_plugins())))
        if self._plugins_from == key:
            return
        if self._builtin is None:
            self._builtin = dict(self.commands)
        self.commands = dict(self._builtin)  # drop those of a previous manager
        self._plugins_from = key
        pm.hook.register_commands(cli=self)
        for name, command in self._builtin.items():
            if self.commands.get(name) is not command:
                self.commands[name] = command
                sys.stderr.write(f"imagen: a plugin tried to replace `imagen {name}`; ignored\n")

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self._add_plugin_commands()
        command = super().get_command(ctx, cmd_name)
        # Commands of first-party plugins, and the distribution each comes with.
        dist = {
            "serve": "imagen-web",
            "comfyui": "imagen-comfyui",
            "supabase": "imagen-supabase",
        }.get(cmd_name)
        if command is None and dist is not None and not ctx.resilient_parsing:
            # click's "No such command" would leave the person guessing what to install.
            raise click.UsageError(
                f"`imagen {cmd_name}` comes with the {dist} plugin: pip install {dist}", ctx
            )
        return command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands()
        return super().list_commands(ctx)


@click.group(cls=ImagenGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    "-V",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    help="Show the version and exit.",
    callback=_show_version,
)
def cli() -> None:
    """Generate images from a prompt through pluggable backends.

    \b
    Quick start:
      imagen generate "a lighthouse at dusk"      # mock backend, no setup
      imagen config init > ~/.config/imagen.yaml  # then add real backends
      imagen backends                             # what is configured

    Exit codes: 0 done, 1 generation failed, 2 usage or config error, 130 interrupted.
    Docs: docs/usage.md, docs/config.md, docs/plugins.md.
    """


# ------------------------------------------------------------------ generate


def _parse_size(_ctx: click.Context, _param: click.Parameter, value: str) -> tuple[int, int]:
    import re

    match = re.fullmatch(r"\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*", value)
    if not match:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 1024x768")
    return int(match.group(1)), int(match.group(2))


def _prompt_text(words: tuple[str, ...]) -> str:
    if words == ("-",):
        return sys.stdin.read().strip()
    return " ".join(words)


def request_options(*, seed_help: str, steps_help: str) -> Callable[[F], F]:
    """PROMPT and the options that make a Request: shared by generate and compare."""
    options = [
        click.argument("prompt", nargs=-1, required=True),
        click.option(
            "--size",
            metavar="WxH",
            default="1024x1024",
            show_default=True,
            callback=_parse_size,
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


def _request(
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
        prompt=_prompt_text(prompt),
        negative=negative,
        width=size[0],
        height=size[1],
        seed=seed,
        steps=steps,
        style=style,
        backend=backend,
    )


@cli.command()
@click.option(
    "--backend", "-b", metavar="NAME", help="Backend instance (default: default_backend)."
)
@request_options(
    seed_help="0 picks a random seed (reported).", steps_help="0 uses the backend's default."
)
@click.option(
    "--output",
    "-o",
    metavar="PATH",
    help="Write here instead of the naming template (a folder keeps the template).",
)
@click.option("--no-sidecar", is_flag=True, help="Do not write the JSON sidecar.")
@click.option("--preview/--no-preview", default=None, help="Force or suppress the preview window.")
@click.option("--no-cloud", is_flag=True, help="Skip cloud sinks for this call.")
@common
def generate(
    prompt: tuple[str, ...],
    backend: str | None,
    size: tuple[int, int],
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    output: str | None,
    no_sidecar: bool,
    preview: bool | None,
    no_cloud: bool,
    config_path: str | None,
) -> None:
    """Generate one image from PROMPT (several words are joined; "-" reads stdin).

    Prints the written path; when stdout is not a terminal, only the path.
    """
    from imagen_core.terminal import StepProgress, summary_line

    request = _request(prompt, size, seed, steps, style, negative, backend)
    session = _session(config_path)
    instance = session.config.backend(backend, session.registry)
    progress = StepProgress.for_terminal(instance.name)
    from imagen_core.notices import warn

    def warn_clear(message: str) -> None:
        progress.close()  # a warning gets a line of its own, not the bar's end
        warn(message)

    session.warn = warn_clear
    try:
        record = session.generate(
            request,
            output=output,
            sidecar=False if no_sidecar else None,
            preview=preview,
            cloud=False if no_cloud else None,
            progress=progress,
        )
    finally:
        progress.close()
    click.echo(str(record.path))
    if _tty():
        click.echo(summary_line(record), err=True)


@cli.command()
@click.option(
    "--models",
    "-m",
    required=True,
    metavar="A,B,C",
    help="Backend instances to compare, comma-separated.",
)
@request_options(
    seed_help="One seed for all; 0 picks one (reported).",
    steps_help="0 uses each backend's default.",
)
@click.option(
    "--output-dir", metavar="DIR", help="Folder for the run (default: a new one under output.dir)."
)
@click.option(
    "--parallel", is_flag=True, help="Run backends on different devices at the same time."
)
@click.option("--no-sidecar", is_flag=True, help="Do not write compare.json.")
@click.option(
    "--preview/--no-preview", default=None, help="Force or suppress the contact sheet preview."
)
@click.option("--no-cloud", is_flag=True, help="Skip cloud sinks for this run.")
@common
def compare(
    prompt: tuple[str, ...],
    models: str,
    size: tuple[int, int],
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    output_dir: str | None,
    parallel: bool,
    no_sidecar: bool,
    preview: bool | None,
    no_cloud: bool,
    config_path: str | None,
) -> None:
    """Run one PROMPT on several backends; write each image and a contact sheet.

    Backends run one after another (one GPU would run out of memory otherwise);
    --parallel overlaps only backends on different devices. Exit code 0 when at
    least one backend succeeded, 1 when all failed.
    """
    from imagen_core.comparison import compare as run_compare
    from imagen_core.terminal import StepProgress, comparison_table

    request = _request(prompt, size, seed, steps, style, negative)
    result = run_compare(
        request,
        models.split(","),
        session=_session(config_path),
        output_dir=output_dir,
        parallel=parallel,
        sidecar=False if no_sidecar else None,
        preview=preview,
        cloud=False if no_cloud else None,
        progress_for=lambda i, n, name: StepProgress.for_terminal(f"{i}/{n} {name}"),
    )
    click.echo(comparison_table(result))
    if not result.ok:
        raise SystemExit(1)


def _parse_date(_ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-05-01") from None


@cli.command()
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
@click.option(
    "--source",
    default="ledger",
    show_default=True,
    metavar="NAME",
    help="A sink that stores usage (e.g. supabase).",
)
@common
def usage(
    since: Any, until: Any, raw: bool, as_json: bool, source: str, config_path: str | None
) -> None:
    """Show what was generated and what it cost, by ISO week, backend, model and caller.

    Every generation (every backend, failed ones too) is recorded by the ledger
    sink; prompts are stored as their sha256 only.
    """
    from imagen_core.terminal import usage_report, usage_rows
    from imagen_core.usage_report import by_week

    if since and until and until < since:
        raise click.BadParameter("--until is before --since", param_hint="--until")
    rows = list(_session(config_path).source(source).rows(since=since, until=until))
    if as_json:
        _echo_json([r.as_dict() for r in rows] if raw else [g.as_dict() for g in by_week(rows)])
    else:
        click.echo(usage_rows(rows) if raw else usage_report(by_week(rows)))


# ------------------------------------------------------------------ queue


@cli.command()
@click.option(
    "--backend", "-b", metavar="NAME", help="Backend instance (default: default_backend)."
)
@request_options(
    seed_help="0 lets the worker's backend pick one (reported).",
    steps_help="0 uses the backend's default.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Tries before the job fails.",
)
@click.option(
    "--wait", "wait_", is_flag=True, help="Wait for a worker to finish it and print the image path."
)
@common
def submit(
    backend: str | None,
    prompt: tuple[str, ...],
    size: tuple[int, int],
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    max_attempts: int,
    wait_: bool,
    config_path: str | None,
) -> None:
    """Queue a generation for `imagen worker`; print the job id."""
    import time

    from imagen_core.pipeline import apply_style

    session = _session(config_path)
    request = _request(prompt, size, seed, steps, style, negative)
    name = session.config.backend(backend, session.registry).name  # unknown: usage error now
    apply_style(request, session.config.styles)  # unknown style: usage error now
    queue = session.queue()
    job = queue.submit(request, backend=name, max_attempts=max_attempts)
    click.echo(job.id)
    if not wait_:
        return
    # Polling the one row is cheap; start quick (a short job is back in
    # milliseconds) and settle at twice a second for long ones.
    pause = 0.02
    while (current := queue.get(job.id)) is not None and current.status in ("queued", "running"):
        time.sleep(pause)
        pause = min(pause * 1.5, 0.5)
    if current is None or current.status != "done":
        status = current.status if current else "gone"
        error = f": {current.error}" if current and current.error else ""
        raise SystemExit(_fail(f"job {job.id} {status}{error}", 1))
    click.echo(current.result_path)


@cli.group(invoke_without_command=True)
@click.option(
    "--status",
    type=click.Choice(["queued", "running", "done", "failed", "canceled"]),
    help="Only jobs in this state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
@click.pass_context
def jobs(
    ctx: click.Context, status: str | None, limit: int, as_json: bool, config_path: str | None
) -> None:
    """List queued and recent jobs, newest first (see also: jobs show, jobs cancel)."""
    ctx.obj = config_path
    if ctx.invoked_subcommand is not None:
        return
    from imagen_core.terminal import table

    found = _session(config_path).queue().list(status=status, limit=limit)
    if as_json:
        _echo_json([j.as_dict() for j in found])
        return
    rows = [("id", "status", "backend", "tries", "created (UTC)", "result")]
    for j in found:
        rows.append(
            (
                j.id,
                j.status,
                j.backend,
                f"{j.attempts}/{j.max_attempts}",
                j.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                j.result_path or j.error or "",
            )
        )
    click.echo(table(rows) if found else "no jobs")


@jobs.command("show")
@click.argument("job_id")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str) -> None:
    """Print one job as JSON."""
    from imagen_core.errors import UsageError

    job = _session(ctx.obj).queue().get(job_id)
    if job is None:
        raise UsageError(f"no job {job_id!r} (see `imagen jobs`)")
    _echo_json(job.as_dict())


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str) -> None:
    """Cancel a queued or running job."""
    from imagen_core.errors import UsageError

    job = _session(ctx.obj).queue().cancel(job_id)
    if job is None:
        raise UsageError(f"no job {job_id!r} (see `imagen jobs`)")
    click.echo(f"{job.id} {job.status}")


@cli.command()
@click.option(
    "--backends", metavar="A,B", help="Serve only these backend instances (default: any)."
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Jobs run at once.",
)
@click.option("--once", is_flag=True, help="Exit when the queue has nothing left for this worker.")
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after taking this many jobs.")
@click.option(
    "--lease",
    "lease_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds a job stays ours without a heartbeat.",
)
@click.option("--json", "json_logs", is_flag=True, help="One JSON line per job on stderr.")
@common
def worker(
    backends: str | None,
    concurrency: int,
    once: bool,
    max_jobs: int | None,
    lease_s: float,
    json_logs: bool,
    config_path: str | None,
) -> None:
    """Run queued jobs through the same pipeline as `imagen generate`.

    One line per job on stderr. Ctrl-C or SIGTERM: stop taking jobs and finish
    those in flight; a second one gives them back to the queue, cancels them on
    the backend (as Ctrl-C does in `imagen generate`) and exits; a third exits
    at once.
    """
    from imagen_core.worker import Worker, WorkerOptions, install_signals

    session = _session(config_path)
    served = tuple(b.strip() for b in backends.split(",") if b.strip()) if backends else None
    for name in served or ():
        session.config.backend(name, session.registry)  # unknown: usage error now
    queue = session.queue()
    options = WorkerOptions(
        backends=served,
        concurrency=concurrency,
        once=once,
        max_jobs=max_jobs,
        lease_s=lease_s,
        json_logs=json_logs,
    )
    runner = Worker(session, queue, options)
    install_signals(runner)
    try:
        runner.run()
    finally:
        queue.close()
    if runner.abandoned:
        # A backend call ignored its cancellation: the interpreter would wait
        # for its thread at exit. Its job is already back in the queue.
        sys.stderr.flush()
        os._exit(0)


@cli.group("queue")
def queue_group() -> None:
    """Set up the job queue."""


@queue_group.command("init")
@common
def queue_init(config_path: str | None) -> None:
    """Create or migrate the queue's storage (safe to run again)."""
    session = _session(config_path)
    instance = session.config.queue(session.registry)
    session.queue().init()
    click.echo(f"queue ({instance.type}) ready")


def _session(config_path: str | None) -> Session:
    from imagen_core.pipeline import Session

    return Session(config_path)


# ------------------------------------------------------------------ listings


def _echo_json(data: Any) -> None:
    import json

    click.echo(json.dumps(data, indent=2, default=str))


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@common
def backends(as_json: bool, config_path: str | None) -> None:
    """List configured backend instances and the backend types plugins provide."""
    from imagen_core.terminal import backends_report

    session = _session(config_path)
    report = backends_report(session.config, session.registry)
    if as_json:
        _echo_json(report)
        return
    click.echo(f"default: {report['default']}")
    click.echo("instances:")
    for inst in report["instances"]:
        mark = "*" if inst["default"] else " "
        note = f"  ! {inst['problem']}" if inst["problem"] else ""
        where = f"  ({inst['where']})" if inst["where"] else ""
        click.echo(f" {mark} {inst['name']:<24} {inst['type']:<12}{where}{note}")
    click.echo("types:")
    for kind in report["types"]:
        click.echo(f"   {kind['name']:<24} {kind['plugin']}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions and the hooks they implement."""
    from imagen_core.plugins import get_plugin_manager
    from imagen_core.terminal import plugins_report

    report = plugins_report(get_plugin_manager())
    if as_json:
        _echo_json(report)
        return
    for plugin in report["plugins"]:
        tag = " (built-in)" if plugin["builtin"] else ""
        click.echo(f"{plugin['distribution']} {plugin['version']}{tag}")
        click.echo(f"    name: {plugin['name']}  hooks: {', '.join(plugin['hooks']) or '-'}")
    for failed in report["failed"]:
        click.echo(f"{failed['distribution']} {failed['version']} (FAILED)")
        click.echo(f"    {failed['error']}")


@cli.command()
def version() -> None:
    """Print imagen's version."""
    click.echo(f"imagen {__version__} (Python {sys.version.split()[0]})")


# ------------------------------------------------------------------ config


@cli.group()
def config() -> None:
    """Create, check and locate imagen.yaml."""


@config.command("init")
def config_init() -> None:
    """Print a commented sample imagen.yaml (every key explained) on stdout.

    \b
    imagen config init > ~/.config/imagen.yaml
    """
    from imagen_core.config_sample import sample
    from imagen_core.plugins import get_plugin_manager
    from imagen_core.registry import collect

    click.echo(sample(collect(get_plugin_manager())), nl=False)


@config.command("validate")
@common
def config_validate(config_path: str | None) -> None:
    """Check the config; exit 0 when it is valid, 1 with the list of problems."""
    from imagen_core.config import load, locate
    from imagen_core.errors import ConfigError
    from imagen_core.plugins import get_plugin_manager
    from imagen_core.registry import collect

    located = locate(config_path)
    try:
        load(collect(get_plugin_manager()), config_path, strict=True)
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"imagen: {line}", err=True)
        click.echo(f"{located.path}: {len(exc.problems)} problem(s)", err=True)
        raise SystemExit(1) from None
    if located.exists:
        click.echo(f"{located.path}: ok")
    else:
        click.echo(f"{located.path}: not found; the built-in defaults are valid")


@config.command("path")
@common
def config_path_cmd(config_path: str | None) -> None:
    """Print the config path in use and whether the file exists."""
    from imagen_core.config import locate

    located = locate(config_path)
    click.echo(str(located.path))
    if located.exists:
        click.echo(f"exists (chosen by {located.source})")
    else:
        click.echo(
            f"does not exist (chosen by {located.source}); built-in defaults are in use; "
            f"create it with: imagen config init > {located.path}"
        )


# ------------------------------------------------------------------ entry


def _fail(message: str, code: int) -> int:
    for line in message.splitlines() or [""]:
        sys.stderr.write(f"imagen: {line}\n")
    return code


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: every error becomes one line per problem and an exit code."""
    global _debug_flag
    _debug_flag = False
    code = _run(argv)
    sys.stdout.flush()
    raise SystemExit(code)


def _run(argv: list[str] | None) -> int:
    from imagen_core.errors import ImagenError

    try:
        result = cli.main(args=argv, prog_name="imagen", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "imagen"
        return _fail(f"{exc.format_message()} (see `{where} --help`)", 2)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        return _fail("interrupted", 130)
    except ImagenError as exc:
        if _debugging():
            import traceback

            traceback.print_exc()
        return _fail(str(exc), exc.exit_code)
    except BrokenPipeError:
        # stdout closed early (`imagen plugins | head`): not an error of ours.
        sys.stderr.close()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if _debugging():
            raise
        return _fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback, and please report it)",
            1,
        )
