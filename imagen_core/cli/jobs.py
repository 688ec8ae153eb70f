"""The job queue: ``imagen submit``, ``imagen jobs``, ``imagen worker`` and
``imagen queue init``."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import attrs
import click

from imagen_core.cli.options import (
    PlainHelp,
    PlainHelpGroup,
    common,
    cost_options,
    echo_json,
    fail,
    make_request,
    open_session,
    price_check,
    request_options,
)

if TYPE_CHECKING:
    from imagen_core.models import Request
    from imagen_core.pipeline import Session
    from imagen_core.queue import Job, Queue


@click.command(cls=PlainHelp)
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
@cost_options
@common
def submit(
    backend: str | None,
    prompt: tuple[str, ...],
    size: tuple[int, int] | None,
    seed: int,
    steps: int,
    style: str | None,
    negative: str,
    images: tuple[str, ...],
    mask: str | None,
    strength: float | None,
    max_attempts: int,
    wait_: bool,
    dry_run: bool,
    max_cost: float | None,
    config_path: str | None,
) -> None:
    """Queue a generation for `imagen worker`; print the job id."""
    import time

    from imagen_core.pipeline import apply_style

    session = open_session(config_path)
    request = make_request(
        prompt, size, seed, steps, style, negative, images=images, mask=mask, strength=strength
    )
    name = session.config.backend(backend, session.registry).name  # unknown: usage error now
    apply_style(request, session.config.styles)  # unknown style: usage error now
    _check_capabilities(session, request, name)
    priced = attrs.evolve(request, backend=name)
    if price_check(session, [priced], dry_run, None):
        return
    if max_cost is not None:
        session.check_max_cost(priced, max_cost)
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
        raise SystemExit(fail(f"job {job.id} {status}{error}", 1))
    click.echo(current.result_path)


def _check_capabilities(session: Session, request: Request, name: str) -> None:
    """A backend that cannot take the request's inputs is a usage error now, not
    a failed job later, when it can be built here (a backend whose token only
    the workers have is checked by them)."""
    from imagen_core.errors import ImagenError

    try:
        _, built = session.backend(name)
    except ImagenError:
        return
    session.check_capabilities(request, name, built)


@click.group(cls=PlainHelpGroup, invoke_without_command=True)
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
    from imagen_core.columns import table

    found = open_session(config_path).queue().list(status=status, limit=limit)
    if as_json:
        echo_json([j.as_dict() for j in found])
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
    """Print one job as JSON. JOB_ID may be any unique start of the id."""
    echo_json(_find(open_session(ctx.obj).queue(), job_id).as_dict())


@jobs.command("cancel")
@click.argument("job_id")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str) -> None:
    """Cancel a queued or running job (exit 1 if it is already done or failed).
    JOB_ID may be any unique start of the id."""
    queue = open_session(ctx.obj).queue()
    found = _find(queue, job_id)
    if found.status in ("done", "failed"):
        raise SystemExit(fail(f"job {found.id} is already {found.status}; nothing to cancel", 1))
    job = queue.cancel(found.id) or found
    if job.status != "canceled":  # it ended meanwhile
        raise SystemExit(fail(f"job {job.id} is already {job.status}; nothing to cancel", 1))
    click.echo(f"{job.id} {job.status}")


def _find(queue: Queue, job_id: str) -> Job:
    from imagen_core.errors import UsageError
    from imagen_core.queue import find_job

    job = find_job(queue, job_id)
    if job is None:
        raise UsageError(f"no job {job_id!r} (see `imagen jobs`)")
    return job


@click.command(cls=PlainHelp)
@click.option(
    "--backends", metavar="A,B", help="Serve only these backend instances (default: any)."
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    help="Jobs run at once (default: the served backends' max_in_flight, summed, at most 8).",
)
@click.option(
    "--once",
    is_flag=True,
    help="Exit when the queue has nothing left for this worker (a backend that is down is "
    "waited for, about a minute at most).",
)
@click.option("--max-jobs", type=click.IntRange(min=1), help="Exit after taking this many jobs.")
@click.option(
    "--lease",
    "lease_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Seconds a job stays ours without a heartbeat.",
)
@click.option(
    "--affinity-s",
    "affinity_s",
    type=click.FloatRange(min=0),
    help="Model affinity: prefer jobs of the backend taken last, passing over an older "
    "job of another backend only for jobs submitted less than this many seconds after "
    "it (default: 60); 0 takes jobs oldest first.",
)
@click.option("--json", "json_logs", is_flag=True, help="One JSON line per job on stderr.")
@common
def worker(
    backends: str | None,
    concurrency: int | None,
    once: bool,
    max_jobs: int | None,
    lease_s: float,
    affinity_s: float | None,
    json_logs: bool,
    config_path: str | None,
) -> None:
    """Run queued jobs through the same pipeline as `imagen generate`.

    One line at start (queue, backends, model affinity, concurrency), then
    one per job on stderr. Ctrl-C or SIGTERM: stop taking jobs and finish
    those in flight; a second one gives them back to the queue, cancels them
    on the backend (as Ctrl-C does in `imagen generate`) and exits; a third
    exits at once. With --once, exit 1 if the queue cannot be reached, or a
    backend stays unreachable (its jobs stay queued).
    """
    from imagen_core.worker import Signals, Worker, WorkerOptions

    signals = Signals()  # first: a SIGTERM while starting up still exits 0
    signals.install()
    session = open_session(config_path)
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
    if affinity_s is not None:
        options = attrs.evolve(options, affinity_s=affinity_s)
    runner = Worker(session, queue, options)
    signals.attach(runner)
    runner.log_line(runner.banner())
    try:
        code = runner.run()
    finally:
        queue.close()
    if runner.abandoned:
        # A backend call ignored its cancellation: the interpreter would wait
        # for its thread at exit. Its job is already back in the queue.
        sys.stderr.flush()
        os._exit(code)
    if code:
        raise SystemExit(code)


@click.group("queue", cls=PlainHelpGroup)
def queue_group() -> None:
    """Set up the job queue."""


@queue_group.command("init")
@common
def queue_init(config_path: str | None) -> None:
    """Create or migrate the queue's storage (safe to run again)."""
    session = open_session(config_path)
    instance = session.config.queue(session.registry)
    session.queue().init()
    click.echo(f"queue ({instance.type}) ready")
