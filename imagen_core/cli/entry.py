"""The ``imagen`` command's entry (``imagen_core.cli:main``, which the console
script ``imagen_core.console:main`` runs): run the ``imagen`` group and turn
every error into one line per problem and an exit code."""

from __future__ import annotations

import atexit
import os
import sys

import click

from imagen_core.cli.options import debugging, fail, reset_debug


def main(argv: list[str] | None = None) -> None:
    """Console-script entry: every error becomes one line per problem and an exit code."""
    reset_debug()
    if argv is None and _no_exit_handlers_yet():
        # The console script (tests and scripts pass their arguments), and no
        # handler that would run after ours and be skipped (a sitecustomize's).
        atexit.register(_leave)
    code = _run(argv)
    sys.stdout.flush()
    _exit_code.append(code)
    raise SystemExit(code)


_exit_code: list[int] = []


def _no_exit_handlers_yet() -> bool:
    """Whether no exit handler was registered before ``main``: those run after
    ``_leave`` (last in, first out), which would skip them. Unknown (no
    ``atexit._ncallbacks``, CPython's): no."""
    count = getattr(atexit, "_ncallbacks", None)
    return callable(count) and count() == 0


def _leave() -> None:
    """The console script's last exit step: once every other exit handler has run
    (the ledger's connection closed, logging flushed; threads were joined before
    them), the process ends without the interpreter's teardown, which frees
    every object of some 200 modules one by one (≈ 15 ms of CPU for a
    generation, a tenth of it) only for the OS to drop the memory anyway.
    Registered first, so it runs after the handlers registered later, and only
    when none was registered before (see ``_no_exit_handlers_yet``); coverage,
    which registers its own later to save its data, keeps the usual exit."""
    if not _exit_code or "coverage" in sys.modules:
        return  # an uncaught exception: Python reports it as usual
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return  # a closed or broken stream: let the interpreter report it
    os._exit(_exit_code[-1])


def _run(argv: list[str] | None) -> int:
    # The package imports this module before it defines the group.
    from imagen_core.cli import cli
    from imagen_core.errors import ImagenError

    try:
        result = cli.main(args=argv, prog_name="imagen", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else "imagen"
        return fail(f"{exc.format_message()} (see `{where} --help`)", 2)
    except click.ClickException as exc:
        return fail(exc.format_message(), exc.exit_code)
    except (click.Abort, KeyboardInterrupt):
        return fail("interrupted", 130)
    except ImagenError as exc:
        if debugging():
            import traceback

            traceback.print_exc()
        return fail(str(exc), exc.exit_code)
    except BrokenPipeError:
        # stdout closed early (`imagen plugins | head`): not an error of ours.
        sys.stderr.close()
        return 0
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:
        if debugging():
            raise
        return fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(run with --debug for the traceback, and please report it)",
            1,
        )
