"""imagen worker: which failures are retried, health gating per backend, the
default concurrency, what it says, and how it stops."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, ClassVar

import attrs
import pytest

from imagen_core import BackendError, BackendUnavailable, Request, Result, Session, hookimpl
from imagen_core import worker as worker_mod
from imagen_core.errors import OutputError, is_transient, is_unavailable
from imagen_core.worker import Worker, WorkerOptions
from tests.helpers import registered, run_cli, until, write_config

if TYPE_CHECKING:
    from collections.abc import Iterator


@attrs.frozen
class ScriptedConfig:
    pass


class Scripted:
    """A backend that raises the next error of ``errors`` (or makes an image when
    it is None) and counts its calls."""

    errors: ClassVar[list[BaseException | None]] = []
    calls: ClassVar[list[str]] = []
    max_in_flight = 1

    def __init__(self, config):
        pass

    def generate(self, request, progress):
        from imagen_mock.picture import render_png

        Scripted.calls.append(request.prompt)
        error = Scripted.errors.pop(0) if Scripted.errors else None
        if error is not None:
            raise error
        return Result(image=render_png("x", 1, 8, 8), seed=1, model="scripted")


class ScriptedPlugin:
    @hookimpl
    def register_backends(self, register):
        register("scripted", Scripted, config=ScriptedConfig)


@pytest.fixture
def scripted(isolated_env, pm):
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\n"
        "backends:\n  remote: {type: scripted}\n  mock: {type: mock}\n",
    )
    Scripted.errors.clear()
    Scripted.calls.clear()
    with registered(pm, ScriptedPlugin(), "scripted"):
        session = Session()
        yield session, session.queue()


def run_worker(session, queue, **options) -> list[str]:
    lines: list[str] = []
    options = {"once": True, "idle_wait_s": 0.02, **options}
    Worker(session, queue, WorkerOptions(**options), log=lines.append).run()
    return lines


@pytest.mark.parametrize(
    ("error", "attempts"),
    [
        (BackendError("ComfyUI rejected the prompt: HTTP 400"), 1),
        (BackendError("Replicate says: HTTP 422 invalid input"), 1),
        (BackendError("HTTP 503 from the server", transient=True), 3),
        (BackendError("failed", transient=False), 1),
        (TimeoutError("read timed out"), 3),
    ],
)
def test_only_failures_that_may_pass_are_retried(scripted, error, attempts):
    session, queue = scripted
    Scripted.errors.extend([error] * 3)
    job = queue.submit(Request("x"), backend="remote", max_attempts=3)
    lines = run_worker(session, queue)
    done = queue.get(job.id)
    assert (done.status, done.attempts) == ("failed", attempts)
    assert len(Scripted.calls) == attempts
    assert sum(" failed " in line for line in lines) == 1  # only the last says failed
    retried = [line for line in lines if " retrying " in line]
    assert len(retried) == attempts - 1
    if retried:
        assert f"job {job.id[:8]} remote retrying (1/3)" in retried[0]


def test_usage_errors_fail_at_once(isolated_env):
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\n"
        "backends:\n  tokenless: {type: mock}\nstyles:\n  known: 'a {prompt}'\n",
    )
    session = Session()
    queue = session.queue()
    style = queue.submit(Request("x", style="gone"), backend="tokenless", max_attempts=3)
    run_worker(session, queue)
    failed = queue.get(style.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "unknown style 'gone'" in failed.error


def test_an_image_made_but_not_written_never_runs_the_backend_again(
    scripted, monkeypatch, tmp_path
):
    import tempfile

    from imagen_core import pipeline

    session, queue = scripted
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))

    def disk_full(path, data, sidecar):
        raise OutputError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(pipeline, "write_with_sidecar", disk_full)
    job = queue.submit(Request("paid for"), backend="remote", max_attempts=3)
    run_worker(session, queue)
    failed = queue.get(job.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "No space left on device" in failed.error and "saved to" in failed.error
    assert Scripted.calls == ["paid for"]  # charged once


def run_worker_code(session, queue, **options) -> tuple[int, list[str]]:
    lines: list[str] = []
    options = {"once": True, "idle_wait_s": 0.02, **options}
    code = Worker(session, queue, WorkerOptions(**options), log=lines.append).run()
    return code, lines


@pytest.fixture
def short_backoff(monkeypatch):
    """Checks of a down backend after 0.05, 0.1, 0.2 s; ``once`` gives up when
    the next pause would be 0.4 s (the longest)."""
    monkeypatch.setattr(worker_mod, "DOWN_FIRST_S", 0.05)
    monkeypatch.setattr(worker_mod, "DOWN_MAX_S", 0.4)


@contextlib.contextmanager
def working(worker: Worker, *released: threading.Event) -> Iterator[None]:
    """``worker.run()`` in a thread for the block; then stop it (setting
    ``released``, what a test's queue may be waiting on) and check it stopped."""
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield
    finally:
        worker.stopping.set()
        for event in released:
            event.set()
        thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_backend_whose_server_is_down_is_not_claimed_for_and_its_jobs_wait(
    scripted, short_backoff
):
    session, queue = scripted
    Scripted.errors.extend(
        [BackendUnavailable("ComfyUI at http://127.0.0.1:9 is not reachable")] * 9
    )
    first = queue.submit(Request("a"), backend="remote")
    second = queue.submit(Request("b"), backend="remote")
    other = queue.submit(Request("c", width=8, height=8), backend="mock")
    code, lines = run_worker_code(session, queue)
    # Only checks: the oldest job again each time, the second never while it is down.
    assert set(Scripted.calls) == {"a"}
    for job in (first, second):
        waiting = queue.get(job.id)
        assert (waiting.status, waiting.attempts) == ("queued", 0)  # no attempt burned
    assert queue.get(other.id).status == "done"  # the other backend goes on
    down = [line for line in lines if "is unreachable" in line]
    assert len(down) == 1 and "backend 'remote'" in down[0]
    assert code == 1  # --once left work undone


def test_once_waits_for_a_backend_down_only_briefly_then_runs_its_jobs(scripted, short_backoff):
    session, queue = scripted
    down = BackendUnavailable("ComfyUI at http://127.0.0.1:9 is not reachable")
    Scripted.errors.extend([down, down])  # two checks fail, the third answers
    jobs = [queue.submit(Request(f"p{i}"), backend="remote") for i in range(2)]
    code, lines = run_worker_code(session, queue, concurrency=1)
    assert code == 0, lines
    assert [queue.get(j.id).status for j in jobs] == ["done", "done"], lines
    assert all(queue.get(j.id).attempts == 1 for j in jobs)  # the waits used none
    assert Scripted.calls == ["p0", "p0", "p0", "p1"]
    assert sum("is unreachable" in line for line in lines) == 1
    assert sum(line.endswith("answers again") for line in lines) == 1, lines
    assert not any("gives up" in line for line in lines)


def test_an_idle_worker_waits_for_the_next_check_not_for_a_new_job(
    scripted, monkeypatch, short_backoff
):
    session, queue = scripted
    # A queue told of no new job (PostgreSQL without a NOTIFY): its wait returns
    # only at its timeout. Only the down backend's check can bring its job back,
    # and idle_wait_s is far too long to poll by.
    over = threading.Event()
    timeouts: list[float] = []

    def wait(timeout_s):
        timeouts.append(timeout_s)
        over.wait(timeout_s)

    monkeypatch.setattr(queue, "wait", wait)
    Scripted.errors.append(BackendUnavailable("not reachable"))
    job = queue.submit(Request("a"), backend="remote")
    lines: list[str] = []
    worker = Worker(
        session, queue, WorkerOptions(idle_wait_s=3600, concurrency=1), log=lines.append
    )
    with working(worker, over):
        until(lambda: queue.get(job.id).status == "done", "the job was not run", 60)
    assert Scripted.calls == ["a", "a"]
    assert queue.get(job.id).attempts == 1
    assert lines[-2].endswith("answers again"), lines
    # It waited on the queue (a new job would wake it), no longer than the check.
    assert timeouts and timeouts[0] <= 0.05, timeouts


def test_a_new_job_wakes_a_worker_that_waits_for_a_down_backend(scripted, monkeypatch):
    """While one backend is down for long, a job for another is taken when the
    queue says it came, not at the down backend's next check."""
    session, queue = scripted
    monkeypatch.setattr(worker_mod, "DOWN_FIRST_S", 3600.0)
    told = threading.Event()  # the queue's news of a job (a NOTIFY)
    waited = threading.Event()

    def wait(timeout_s):
        waited.set()
        told.wait(timeout_s)
        told.clear()

    monkeypatch.setattr(queue, "wait", wait)
    Scripted.errors.append(BackendUnavailable("not reachable"))
    down = queue.submit(Request("down"), backend="remote")
    worker = Worker(session, queue, WorkerOptions(idle_wait_s=3600, concurrency=1))
    with working(worker, told):
        assert waited.wait(timeout=60), "the worker never waited on the queue"
        other = queue.submit(Request("other"), backend="mock")
        told.set()
        until(lambda: queue.get(other.id).status == "done", "the new job was not run", 60)
    assert queue.get(down.id).status == "queued"


def test_once_gives_up_on_a_backend_that_stays_down_when_the_backoff_is_longest(
    scripted, short_backoff
):
    session, queue = scripted
    Scripted.errors.extend([BackendUnavailable("not reachable")] * 20)
    jobs = [queue.submit(Request(f"p{i}"), backend="remote") for i in range(2)]
    code, lines = run_worker_code(session, queue, concurrency=1)
    assert code == 1
    # Checks after 0.05, 0.1 and 0.2 s; the next pause would be the longest.
    assert Scripted.calls == ["p0"] * 4
    waits = [line for line in lines if " remote waiting " in line]
    assert [line.rsplit(", ", 1)[1] for line in waits] == [
        "next check in 0.05 s",
        "next check in 0.1 s",
        "next check in 0.2 s",
        "no more checks",
    ]
    gave_up = [line for line in lines if "gives up" in line]
    assert len(gave_up) == 1, lines
    assert gave_up[0].startswith("imagen: worker: backend 'remote' is still unreachable after ")
    assert "--once gives up on it and will exit 1 (its jobs stay queued" in gave_up[0]
    for job in jobs:
        left = queue.get(job.id)
        assert (left.status, left.attempts) == ("queued", 0)


@attrs.frozen
class DownPairConfig:
    pass


class DownPair:
    """A backend whose server is down, taking two jobs at once: the first two
    calls fail together (each waits for the other to be in flight)."""

    max_in_flight = 2
    barrier = threading.Barrier(2)
    calls: ClassVar[list[str]] = []

    def __init__(self, config):
        pass

    def generate(self, request, progress):
        DownPair.calls.append(request.prompt)
        if len(DownPair.calls) <= 2:
            DownPair.barrier.wait(timeout=60)
        raise BackendUnavailable("not reachable")


class DownPairPlugin:
    @hookimpl
    def register_backends(self, register):
        register("downpair", DownPair, config=DownPairConfig)


def test_jobs_in_flight_together_count_as_one_check(isolated_env, pm, short_backoff):
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\ndefault_backend: comfy\n"
        "backends:\n  comfy: {type: downpair}\n",
    )
    DownPair.barrier.reset()
    DownPair.calls.clear()
    with registered(pm, DownPairPlugin(), "downpair"):
        session = Session()
        queue = session.queue()
        jobs = [queue.submit(Request(f"p{i}"), backend="comfy") for i in range(2)]
        code, lines = run_worker_code(session, queue, concurrency=2)
    assert code == 1
    waits = [line.rsplit(", ", 1)[1] for line in lines if " comfy waiting " in line]
    # The second of the pair found the server down as the first did: it does
    # not double the pause (a later check of 0.1 s does).
    first_two = [float(w.split()[3]) for w in waits[:2]]
    assert first_two[0] == 0.05 and 0 < first_two[1] <= 0.05, waits
    assert "next check in 0.1 s" in waits and "next check in 0.2 s" in waits, waits
    assert waits[-1] == "no more checks"
    assert all(queue.get(j.id).status == "queued" for j in jobs)


def test_a_budgets_wait_is_not_a_server_that_answers_again(scripted):
    session, queue = scripted
    job = queue.submit(Request("a"), backend="remote")
    lines: list[str] = []
    worker = Worker(
        session, queue, WorkerOptions(idle_wait_s=0.02, concurrency=1), log=lines.append
    )
    worker._hold("remote", dt.datetime.now(dt.timezone.utc))  # a budget's reset, now
    with working(worker):
        until(lambda: queue.get(job.id).status == "done", "the job was not run", 60)
    assert not any("answers again" in line for line in lines), lines


def test_a_down_backend_is_checked_again_with_backoff_and_said_once(scripted, monkeypatch):
    session, queue = scripted
    monkeypatch.setattr(worker_mod, "DOWN_FIRST_S", 0.05)
    down = BackendUnavailable("not reachable")
    Scripted.errors.extend([down, down, down])
    jobs = [queue.submit(Request(f"p{i}"), backend="remote") for i in range(2)]
    lines: list[str] = []
    worker = Worker(
        session, queue, WorkerOptions(idle_wait_s=0.02, concurrency=1), log=lines.append
    )
    with working(worker):
        until(lambda: all(queue.get(j.id).status == "done" for j in jobs), "jobs were not run", 60)
    assert len(Scripted.calls) == 5  # three checks that failed, then both jobs
    assert sum("is unreachable" in line for line in lines) == 1
    assert sum(line.endswith("answers again") for line in lines) == 1, lines
    assert all(queue.get(j.id).attempts == 1 for j in jobs)


def test_the_failure_classes(scripted):
    import requests

    assert is_transient(BackendError("x", transient=True))
    assert not is_transient(BackendError("x"))
    assert is_transient(BackendUnavailable("x")) and is_unavailable(BackendUnavailable("x"))
    try:
        try:
            raise requests.ConnectionError("refused")
        except requests.ConnectionError as exc:
            raise BackendError("backend 'x' failed: ConnectionError: refused") from exc
    except BackendError as wrapped:
        assert is_transient(wrapped) and is_unavailable(wrapped)
    response = requests.Response()
    response.status_code = 404
    assert not is_transient(requests.HTTPError("404", response=response))
    response.status_code = 429
    assert is_transient(requests.HTTPError("429", response=response))


# ------------------------------------------------------------------ concurrency


@attrs.frozen
class PairConfig:
    pass


class Pair:
    """A backend that, like ComfyUI, takes two prompts at once: each call waits
    until a second one is in flight too."""

    max_in_flight = 2
    barrier = threading.Barrier(2)

    def __init__(self, config):
        pass

    def generate(self, request, progress):
        from imagen_mock.picture import render_png

        Pair.barrier.wait(timeout=60)  # broken (an error) when never two at once
        return Result(image=render_png("x", 1, 8, 8), seed=1, model="pair")


class PairPlugin:
    @hookimpl
    def register_backends(self, register):
        register("pair", Pair, config=PairConfig)


def test_the_default_concurrency_follows_the_backends_max_in_flight(isolated_env, pm):
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\ndefault_backend: comfy\n"
        "backends:\n  comfy: {type: pair}\n",
    )
    Pair.barrier.reset()
    with registered(pm, PairPlugin(), "pair"):
        session = Session()
        queue = session.queue()
        jobs = [queue.submit(Request(f"{i}"), backend="comfy") for i in range(2)]
        worker = Worker(session, queue, WorkerOptions(once=True, idle_wait_s=0.02), log=print)
        assert worker.concurrency == 2
        worker.run()
    assert [queue.get(j.id).status for j in jobs] == ["done", "done"]


def test_the_default_concurrency_of_a_mock_only_worker_is_one(isolated_env):
    session = Session()
    worker = Worker(session, session.queue(), WorkerOptions(), log=print)
    assert worker.concurrency == 1
    assert worker.banner().endswith("concurrency 1 (the backends' max_in_flight)")


# ------------------------------------------------------------------ the command


def cli(*args: str, config: str | None = None, **popen) -> subprocess.Popen[str]:
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    code = f"from imagen_core.cli import main; main({list(args)!r})"
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True, **popen
    )


def test_the_worker_says_what_it_serves_once_at_start(isolated_env):
    write_config(isolated_env, "queue: {type: sqlite, poll_s: 0.02}\n")
    proc = cli("worker", "--once")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    first = err.splitlines()[0]
    assert first.startswith("imagen: worker ") and "sqlite queue" in first
    assert "backends: any backend" in first and "concurrency 1" in first


def test_sigterm_with_nothing_in_flight_says_so(isolated_env):
    write_config(isolated_env, "queue: {type: sqlite, poll_s: 0.02}\n")
    proc = cli("worker")
    assert proc.stderr.readline().startswith("imagen: worker ")  # started
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert err.strip() == "imagen: worker: stopping (no job in flight)"


def test_sigterm_while_the_worker_starts_exits_0(isolated_env, tmp_path):
    # The config is a FIFO: the worker blocks reading it, after its signal
    # handlers are in place; the test knows it got there when its open returns.
    fifo = tmp_path / "imagen.yaml"
    os.mkfifo(fifo)
    proc = cli("worker", "--config", str(fifo))
    with open(fifo, "w") as config:  # returns once the worker opened it
        proc.send_signal(signal.SIGTERM)
        config.write("queue: {type: sqlite, poll_s: 0.02}\n")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping before it started" in err


def test_once_exits_1_when_the_queue_cannot_be_reached(isolated_env, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    write_config(isolated_env, f"queue: {{type: sqlite, path: {blocker}/jobs.db}}\n")
    proc = cli("worker", "--once")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert err.rstrip().endswith("--once gives up")


# ------------------------------------------------------------------ short ids


def test_jobs_show_and_cancel_take_a_short_id(isolated_env, capsys):
    import json

    write_config(isolated_env, "queue: {type: sqlite, poll_s: 0.02}\n")
    queue = Session().queue()
    jobs = [queue.submit(Request(f"p{i}"), backend="mock") for i in range(20)]
    job = jobs[0]
    code, out, _err = run_cli(capsys, "jobs", "show", job.id[:8])
    assert code == 0 and json.loads(out)["id"] == job.id
    code, out, _err = run_cli(capsys, "jobs", "cancel", job.id[:8])
    assert code == 0 and out.strip() == f"{job.id} canceled"
    shared = max(
        ([j.id for j in jobs if j.id[0] == digit] for digit in "0123456789abcdef"), key=len
    )
    code, _out, err = run_cli(capsys, "jobs", "show", shared[0][0])
    assert code == 2 and f"job id {shared[0][0]!r} is ambiguous" in err
    assert all(job_id in err for job_id in shared)


def test_cancelling_a_finished_job_exits_1(isolated_env, capsys):
    write_config(isolated_env, "queue: {type: sqlite, poll_s: 0.02}\n")
    session = Session()
    queue = session.queue()
    job = queue.submit(Request("x", width=8, height=8), backend="mock")
    run_worker(session, queue)
    code, out, err = run_cli(capsys, "jobs", "cancel", job.id)
    assert code == 1 and out == ""
    assert err.strip() == f"imagen: job {job.id} is already done; nothing to cancel"
    assert queue.get(job.id).status == "done"


def test_on_a_terminal_the_worker_shows_the_running_jobs_steps(isolated_env):
    import pty

    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\nbackends:\n  mock: {type: mock, latency_s: 0.2}\n",
    )
    queue = Session().queue()
    job = queue.submit(Request("x", width=8, height=8, steps=4), backend="mock")
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    code = "from imagen_core.cli import main; main(['worker', '--once'])"
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=child_fd)
    os.close(child_fd)
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(main_fd, 4096)
            except OSError:  # the worker exited: the terminal is gone
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(main_fd)
        assert proc.wait(timeout=60) == 0
    text = seen.decode()
    assert f"job {job.id[:8]} mock 4/4" in text  # the status line
    assert f"\r\x1b[Kjob {job.id[:8]} mock done" in text  # the job line erases it first
    assert queue.get(job.id).status == "done"
