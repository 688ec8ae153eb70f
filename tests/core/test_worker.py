"""imagen worker: the pipeline per job, leases, capacity, and a kill -9 fault test."""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import ClassVar

import attrs
import pytest

from imagen_core import Request, Result, Session, hookimpl
from imagen_core.queue import FINAL
from imagen_core.worker import Worker, WorkerOptions
from tests.helpers import job_files, job_image, registered, run_cli, write_config

CONFIG = """
queue: {type: sqlite, poll_s: 0.02}
backends:
  mock: {type: mock}
  other: {type: mock}
  broken: {type: mock, fail: CUDA out of memory}
"""


@pytest.fixture
def session(isolated_env):
    write_config(isolated_env, CONFIG)
    return Session()


def run_worker(session, queue, **options) -> list[str]:
    lines: list[str] = []
    worker = Worker(
        session,
        queue,
        WorkerOptions(**{"once": True, "idle_wait_s": 0.02, **options}),
        log=lines.append,
    )
    worker.run()
    return lines


def test_jobs_run_through_the_pipeline_named_by_job_id(session, output_dir):
    queue = session.queue()
    jobs = [
        queue.submit(Request(f"fox {i}", width=16, height=16), backend="mock") for i in range(3)
    ]
    lines = run_worker(session, queue, concurrency=2)
    assert len(lines) == 3 and all(" done " in line for line in lines)
    for job in jobs:
        done = queue.get(job.id)
        assert done.status == "done" and done.result_path == str(
            job_image(output_dir, job.id, job.created_at)
        )
        assert (
            Path(done.result_path).exists() and Path(done.result_path).with_suffix(".json").exists()
        )
        assert done.metadata["model"] == "mock-procedural-v1" and done.metadata["seed"] > 0
    import sqlite3

    from imagen_core.ledger import default_path

    assert sqlite3.connect(default_path()).execute("SELECT count(*) FROM usage").fetchone()[0] == 3


def test_failures_retry_then_fail_and_unknown_backends_fail_clearly(session):
    queue = session.queue()
    broken = queue.submit(Request("x"), backend="broken", max_attempts=3)
    unknown = queue.submit(Request("x"), backend="gone", max_attempts=3)
    run_worker(session, queue)
    b = queue.get(broken.id)
    # Not retried: it is no transient failure (see test_worker_failures.py).
    assert (b.status, b.attempts) == ("failed", 1)
    assert b.error == "mock backend failed as configured: CUDA out of memory"
    u = queue.get(unknown.id)
    assert u.status == "failed" and u.error.startswith("unknown backend 'gone'")


def test_a_worker_serves_only_its_backends(session):
    queue = session.queue()
    mine = queue.submit(Request("x", width=8, height=8), backend="mock")
    theirs = queue.submit(Request("x", width=8, height=8), backend="other")
    run_worker(session, queue, backends=("mock",))
    assert queue.get(mine.id).status == "done"
    assert queue.get(theirs.id).status == "queued"


def test_a_rerun_replaces_what_an_earlier_attempt_left(session, output_dir):
    queue = session.queue()
    job = queue.submit(Request("x", width=8, height=8), backend="mock")
    image = job_image(output_dir, job.id, job.created_at)
    folder = image.parent
    folder.mkdir(parents=True)
    # An earlier attempt's image, its sidecar, a second name from a race, and an
    # image of a type only its sidecar names.
    (folder / f"{job.id}.png").write_bytes(b"half of an earlier attempt")
    (folder / f"{job.id}-1.webp").write_bytes(b"a racing attempt")
    (folder / f"{job.id}-1.json").write_text(json.dumps({"image": f"{job.id}-1.webp"}))
    (folder / f"{job.id}.avif").write_bytes(b"an odd type")
    (folder / f"{job.id}.json").write_text(json.dumps({"image": f"{job.id}.avif"}))
    neighbour = folder / "another-job.png"
    neighbour.write_bytes(b"not this job's")
    run_worker(session, queue)
    assert job_files(output_dir) == sorted([image, image.with_suffix(".json"), neighbour])
    assert image.read_bytes().startswith(b"\x89PNG")
    assert json.loads(image.with_suffix(".json").read_text())["image"] == image.name


def test_a_rerun_removes_an_image_of_the_flat_layout_before_it(session, output_dir):
    """Before images went by submit hour, every one was jobs/<id>.<ext>."""
    queue = session.queue()
    job = queue.submit(Request("x", width=8, height=8), backend="mock")
    flat = output_dir / "jobs"
    flat.mkdir(parents=True)
    (flat / f"{job.id}.png").write_bytes(b"an attempt by an older worker")
    (flat / f"{job.id}.json").write_text(json.dumps({"image": f"{job.id}.png", "prompt": "x"}))
    older = flat / "0badc0de-0000-4000-8000-000000000000.png"  # another job's, done long ago
    older.write_bytes(b"keep me")
    run_worker(session, queue)
    image = job_image(output_dir, job.id, job.created_at)
    assert job_files(output_dir) == sorted([older, image, image.with_suffix(".json")])
    assert queue.get(job.id).result_path == str(image)


def test_finding_an_earlier_attempt_lists_no_folder(session, output_dir, monkeypatch):
    """The cost of a job must not grow with the images already there."""
    queue = session.queue()
    job = queue.submit(Request("x", width=8, height=8), backend="mock")
    folder = job_image(output_dir, job.id, job.created_at).parent
    folder.mkdir(parents=True)
    (folder / f"{job.id}.png").write_bytes(b"left over")
    worker = Worker(session, queue, WorkerOptions(once=True), log=lambda line: None)

    def listed(*args, **kwargs):
        raise AssertionError(f"a folder was listed: {args}")

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", listed)
        patch.setattr(os, "listdir", listed)
        target = worker._output(job)
    assert target == folder / job.id and not (folder / f"{job.id}.png").exists()


def test_images_go_by_submit_hour_in_utc(session, output_dir):
    import datetime as dt
    import sqlite3

    queue = session.queue()
    jobs = [queue.submit(Request(f"x{i}", width=8, height=8), backend="mock") for i in range(7)]
    # Submitted over two days, some in the same hour, one with a time zone (as
    # another process might write it): each image goes to its submit hour's folder.
    start = dt.datetime(2026, 11, 27, 22, 30, tzinfo=dt.timezone.utc)
    when = [start + dt.timedelta(minutes=20 * i) for i in range(6)]
    when.append(dt.datetime(2026, 11, 28, 9, 5, tzinfo=dt.timezone(dt.timedelta(hours=5))))
    with sqlite3.connect(queue.path) as db:
        for job, moment in zip(jobs, when, strict=True):
            db.execute(
                "UPDATE jobs SET created_at = ? WHERE id = ?",
                (moment.isoformat(timespec="milliseconds"), job.id),
            )
    db.close()
    run_worker(session, queue, concurrency=3)
    hours = {
        "2026-11-27/22": {jobs[0].id, jobs[1].id},
        "2026-11-27/23": {jobs[2].id, jobs[3].id, jobs[4].id},
        "2026-11-28/00": {jobs[5].id},
        "2026-11-28/04": {jobs[6].id},
    }
    found: dict[str, set[str]] = {}
    for path in job_files(output_dir):
        if path.suffix == ".png":
            found.setdefault(path.parent.relative_to(output_dir / "jobs").as_posix(), set()).add(
                path.stem
            )
    assert found == hours
    assert sorted(p.name for p in (output_dir / "jobs").iterdir()) == ["2026-11-27", "2026-11-28"]
    for job in jobs:
        done = queue.get(job.id)
        assert done.status == "done" and Path(done.result_path).is_file()
        assert Path(done.result_path) == job_image(output_dir, job.id, done.created_at)


class Gate:
    active: ClassVar[Counter[str]] = Counter()
    most: ClassVar[Counter[str]] = Counter()
    lock = threading.Lock()
    release = threading.Event()


@attrs.frozen
class GateConfig:
    pass


class GateBackend:
    max_in_flight = 2  # as a ComfyUI backend says of itself

    def __init__(self, config):
        pass

    def generate(self, request, progress):
        from imagen_mock.picture import render_png

        name = request.backend
        with Gate.lock:
            Gate.active[name] += 1
            Gate.most[name] = max(Gate.most[name], Gate.active[name])
        try:
            Gate.release.wait(timeout=0.3)
            return Result(image=render_png("x", 1, 8, 8), seed=1, model="gate")
        finally:
            with Gate.lock:
                Gate.active[name] -= 1


class GatePlugin:
    @hookimpl
    def register_backends(self, register):
        register("gate", GateBackend, config=GateConfig)


def test_max_in_flight_per_backend(isolated_env, pm):
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\nbackends:\n  two: {type: gate}\n  one: {type: gate, max_in_flight: 1}\n",
    )
    Gate.active.clear()
    Gate.most.clear()
    with registered(pm, GatePlugin(), "gate"):
        session = Session()
        queue = session.queue()
        for _ in range(4):
            queue.submit(Request("x"), backend="two")
            queue.submit(Request("x"), backend="one")
        run_worker(session, queue, concurrency=4)
    assert Gate.most["two"] == 2  # the backend's own max_in_flight
    assert Gate.most["one"] == 1  # the block's max_in_flight wins
    assert all(j.status == "done" for j in queue.list())


def test_a_job_lost_while_running_leaves_no_image(session, output_dir):
    queue = session.queue()
    job = queue.submit(Request("x", width=8, height=8), backend="mock")
    worker = Worker(
        session, queue, WorkerOptions(once=True, idle_wait_s=0.02), log=lambda line: None
    )
    original = session.generate

    def cancel_midway(*args, **kwargs):
        queue.cancel(job.id)  # someone cancels while the backend runs
        worker._lost.add(job.id)
        return original(*args, **kwargs)

    session.generate = cancel_midway
    worker.run()
    assert queue.get(job.id).status == "canceled"
    assert job_files(output_dir) == []


def test_cli_submit_wait_and_jobs(session, capsys, monkeypatch):
    run = functools.partial(run_cli, capsys)

    code, out, _ = run("submit", "a", "fox", "--size", "16x16")
    job_id = out.strip()
    assert code == 0 and len(job_id) == 36
    code, out, _ = run("jobs", "--json")
    assert json.loads(out)[0]["id"] == job_id and json.loads(out)[0]["status"] == "queued"
    run_worker(session, session.queue())
    code, out, _ = run("jobs", "show", job_id)
    assert json.loads(out)["status"] == "done"
    code, out, err = run("jobs", "cancel", "nope")
    assert code == 2 and "no job 'nope'" in err
    code, _, err = run("submit", "x", "--backend", "typo")
    assert code == 2 and "unknown backend 'typo'" in err
    code, _, err = run("worker", "--backends", "typo", "--once")
    assert code == 2 and "unknown backend 'typo'" in err


@pytest.mark.slow
def test_kill_9_fault_test_every_job_done_exactly_once(isolated_env, output_dir, tmp_path):
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\nbackends:\n  mock: {type: mock, latency_s: 0.1}\n",
    )
    session = Session()
    queue = session.queue()
    # Enough attempts that no job runs out of them however the kills fall: this
    # test is about losing and duplicating jobs, not about giving up on them.
    ids = {
        queue.submit(
            Request(f"job {i}", width=16, height=16, seed=i + 1), backend="mock", max_attempts=20
        ).id
        for i in range(200)
    }
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    logs = tmp_path / "logs"
    logs.mkdir()
    workers: list[subprocess.Popen[bytes]] = []
    started = 0

    def start() -> subprocess.Popen[bytes]:
        nonlocal started
        started += 1
        log = open(logs / f"w{started}.log", "wb")  # noqa: SIM115 - closed with the process
        code = "from imagen_core.cli import main; main(['worker', '--lease', '1', '--json'])"
        return subprocess.Popen(
            [sys.executable, "-c", code], env=env, stderr=log, stdout=subprocess.DEVNULL
        )

    workers = [start() for _ in range(4)]
    # Each kill lands on a worker seen holding a running job (its id carries its
    # pid), and counts as a hit when, once the worker is dead, the job is still
    # running under its name: then the kill certainly interrupted it. Kill until
    # enough kills hit, however the machine's load shifts the timing.
    kills, hit, targeted = 0, set(), set()
    deadline = time.monotonic() + 180
    while len(hit) < 6 and time.monotonic() < deadline:
        by_pid = {w.pid: i for i, w in enumerate(workers)}
        running = [
            (j, int(j.worker.split(":")[1]))
            for j in queue.list(status="running", limit=500)
            if j.worker and int(j.worker.split(":")[1]) in by_pid and j.id not in targeted
        ]
        if not running:
            if all(j.status == "done" for j in queue.list(limit=500)):
                break
            time.sleep(0.01)
            continue
        job, pid = running[0]
        targeted.add(job.id)  # each job is killed under at most once: none runs out of tries
        victim = by_pid[pid]
        workers[victim].send_signal(signal.SIGKILL)
        workers[victim].wait()
        kills += 1
        after = queue.get(job.id)
        if after.status == "running" and after.worker == job.worker:
            hit.add(job.id)
        workers[victim] = start()
    assert len(hit) >= 6, f"only {len(hit)} of {kills} kills hit a running job in time"
    deadline = time.monotonic() + 180
    while any(j.status not in FINAL for j in queue.list(limit=500)):
        assert time.monotonic() < deadline, Counter(j.status for j in queue.list(limit=500))
        time.sleep(0.05)
    failed = [(j.attempts, j.error) for j in queue.list(status="failed", limit=500)]
    assert not failed
    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        w.wait(timeout=30)

    jobs = queue.list(limit=500)
    assert {j.id for j in jobs} == ids
    assert Counter(j.status for j in jobs) == {"done": 200}
    assert all(j.attempts > 1 for j in jobs if j.id in hit)  # the hit jobs ran again
    images = sorted(p.name for p in job_files(output_dir) if p.suffix == ".png")
    assert images == sorted(f"{i}.png" for i in ids)  # exactly one image per job
    done_lines = Counter()
    for log in logs.iterdir():
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                entry = json.loads(line)
                if entry["status"] == "done":
                    done_lines[entry["job"]] += 1
    # Completed exactly once: no job has two "done" lines. A kill between a
    # job's completion and its log line loses that line (at most one a kill).
    assert set(done_lines) <= ids and set(done_lines.values()) == {1}
    assert len(done_lines) >= len(ids) - kills


def test_a_queue_blip_does_not_stop_the_worker(session):
    from imagen_core.errors import ImagenError

    queue = session.queue()
    job = queue.submit(Request("x", width=8, height=8), backend="mock")
    real_claim = queue.claim
    blips = [ImagenError("database is restarting")]

    def flaky_claim(*args, **kwargs):
        if blips:
            raise blips.pop()
        return real_claim(*args, **kwargs)

    queue.claim = flaky_claim
    lines = run_worker(session, queue)
    assert lines[0] == "imagen: worker: cannot claim: database is restarting (retrying)"
    assert queue.get(job.id).status == "done"


def test_each_job_is_claimed_run_and_completed_by_one_thread(session):
    # A hand-off between threads per job cost a fifth of a small job's time.
    queue = session.queue()
    for i in range(6):
        queue.submit(Request(f"x{i}", width=8, height=8), backend="mock")
    threads: dict[str, set[int]] = {}
    real_claim, real_complete = queue.claim, queue.complete

    def claim(*args, **kwargs):
        job = real_claim(*args, **kwargs)
        if job is not None:
            threads.setdefault(job.id, set()).add(threading.get_ident())
        return job

    def complete(job_id, *args, **kwargs):
        threads[job_id].add(threading.get_ident())
        return real_complete(job_id, *args, **kwargs)

    queue.claim, queue.complete = claim, complete
    lines = run_worker(session, queue, concurrency=2)
    assert len(lines) == 6 and all(" done " in line for line in lines)
    assert len(threads) == 6 and all(len(seen) == 1 for seen in threads.values())
    assert threading.get_ident() not in set().union(*threads.values())


def test_a_bug_in_a_job_thread_is_raised_by_run_not_lost(session):
    queue = session.queue()
    queue.submit(Request("x", width=8, height=8), backend="mock")

    def broken_claim(*args, **kwargs):
        raise RuntimeError("a bug in a queue plugin")

    queue.claim = broken_claim
    worker = Worker(session, queue, WorkerOptions(concurrency=2), log=lambda line: None)
    with pytest.raises(RuntimeError, match="a bug in a queue plugin"):
        worker.run()


def test_max_jobs_with_several_threads_takes_that_many_and_returns(session):
    queue = session.queue()
    jobs = [queue.submit(Request(f"x{i}", width=8, height=8), backend="mock") for i in range(5)]
    lines = run_worker(session, queue, concurrency=3, max_jobs=2, once=False)
    assert len(lines) == 2
    assert sorted(queue.get(job.id).status for job in jobs) == ["done"] * 2 + ["queued"] * 3


def slow_backend(isolated_env, latency_s: float) -> tuple[Session, object]:
    """A session whose backend ``slow`` takes ``latency_s`` (in 0.1 s slices at 600 steps)."""
    write_config(
        isolated_env,
        "queue: {type: sqlite, poll_s: 0.02}\n"
        f"backends:\n  slow: {{type: mock, latency_s: {latency_s}}}\n",
    )
    session = Session()
    return session, session.queue()


def worker_process() -> subprocess.Popen[str]:
    env = {**os.environ, "IMAGEN_LOAD_PLUGINS": "imagen-mock"}
    code = "from imagen_core.cli import main; main(['worker'])"
    return subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True
    )


def wait_running(queue, job_id: str) -> None:
    deadline = time.monotonic() + 20
    while queue.get(job_id).status != "running":
        assert time.monotonic() < deadline, "the worker never took the job"
        time.sleep(0.02)


def test_sigterm_finishes_the_job_in_flight_then_exits_0(isolated_env):
    _, queue = slow_backend(isolated_env, 1.5)
    first = queue.submit(Request("x", width=8, height=8), backend="slow")
    second = queue.submit(Request("y", width=8, height=8), backend="slow")
    proc = worker_process()
    wait_running(queue, first.id)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    err = proc.stderr.read()
    assert "finishing the jobs in flight" in err
    assert queue.get(first.id).status == "done"  # finished, not abandoned
    assert queue.get(second.id).status == "queued"  # not taken after the signal


def test_a_second_sigterm_requeues_and_stops_the_backend_then_exits_0(isolated_env):
    session, queue = slow_backend(isolated_env, 60)
    job = queue.submit(Request("x", width=8, height=8, steps=600), backend="slow")
    proc = worker_process()
    wait_running(queue, job.id)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - started < 10  # the 60 s backend call was stopped
    err = proc.stderr.read()
    assert "canceling the jobs in flight" in err
    assert f"job {job.id[:8]} slow released" in err
    back = queue.get(job.id)
    assert (back.status, back.attempts) == ("queued", 0)
    # The pipeline told the sinks: the ledger has the interrupted attempt.
    rows = session.source("ledger").rows(since=None, until=None)
    assert [(r.backend, r.status, r.error) for r in rows] == [("slow", "failed", "interrupted")]


def test_a_job_canceled_mid_run_stops_its_backend_call(isolated_env, output_dir):
    session, queue = slow_backend(isolated_env, 60)
    job = queue.submit(Request("x", width=8, height=8, steps=600), backend="slow")
    lines: list[str] = []
    worker = Worker(
        session, queue, WorkerOptions(once=True, idle_wait_s=0.02, lease_s=0.3), log=lines.append
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    wait_running(queue, job.id)
    started = time.monotonic()
    queue.cancel(job.id)
    thread.join(timeout=20)
    assert not thread.is_alive() and time.monotonic() - started < 5
    assert queue.get(job.id).status == "canceled"
    assert len(lines) == 1 and lines[0].startswith(f"job {job.id[:8]} slow canceled ")
    assert job_files(output_dir) == []


def test_a_poison_job_fails_alone_and_the_worker_goes_on(session, capsys):
    import sqlite3

    queue = session.queue()
    queue.init()
    db = sqlite3.connect(queue.path)
    for job_id, body in (
        ("p-width", '{"prompt": "x", "width": 0}'),
        ("p-key", '{"prompt": "x", "widht": 5}'),
    ):
        db.execute(
            "INSERT INTO jobs (id, request, backend, status, created_at, updated_at)"
            " VALUES (?, ?, 'mock', 'queued', '2000-01-01T00:00:00+00:00',"
            " '2000-01-01T00:00:00+00:00')",
            (job_id, body),
        )
    db.commit()
    db.close()
    good = queue.submit(Request("x", width=8, height=8), backend="mock")
    lines = run_worker(session, queue)
    assert [line for line in lines if "cannot claim" in line] == []
    assert queue.get(good.id).status == "done"
    assert queue.get("p-width").status == "failed"
    assert queue.get("p-width").error == "invalid request: width must be between 1 and 8192, got 0"
    assert "unknown field(s) widht" in queue.get("p-key").error
    for args in (
        ["jobs"],
        ["jobs", "--json"],
        ["jobs", "show", "p-key"],
        ["jobs", "cancel", "p-key"],
    ):
        code, _, err = run_cli(capsys, *args)
        assert "internal error" not in err and code in (0, 1), (args, err)


# ------------------------------------------------------------------ model affinity


def backends_in_order(lines: list[str]) -> list[str]:
    """The backend of each job line, in the order the jobs ended."""
    return [line.split()[2] for line in lines if line.startswith("job ")]


@pytest.mark.parametrize(
    ("affinity_s", "order"),
    [
        (60.0, ["mock", "mock", "other", "other"]),  # the backend taken last, first
        (0.0, ["mock", "other", "mock", "other"]),  # off: oldest first
    ],
)
def test_affinity_takes_the_backend_taken_last_first(session, affinity_s, order):
    queue = session.queue()
    for backend in ("mock", "other", "mock", "other"):
        queue.submit(Request("x", width=8, height=8), backend=backend)
    lines = run_worker(session, queue, concurrency=1, affinity_s=affinity_s)
    assert backends_in_order(lines) == order


def test_affinity_claims_no_other_backend_while_the_last_one_is_full(session):
    # Two backends of max_in_flight 1, concurrency 2: claiming `other` while a
    # `mock` job runs would queue a model switch on a shared server. The
    # worker waits for its `mock` job instead, then takes the next `mock` one.
    queue = session.queue()
    for backend in ("mock", "other", "mock", "other"):
        queue.submit(Request("x", width=8, height=8), backend=backend)
    claims: list[str] = []
    real_claim = queue.claim

    def claim(*args, **kwargs):
        job = real_claim(*args, **kwargs)
        if job is not None:
            claims.append(job.backend)
        return job

    queue.claim = claim
    lines = run_worker(session, queue, concurrency=2, backends=("mock", "other"))
    assert claims == ["mock", "mock", "other", "other"]
    assert len(lines) == 4 and all(" done " in line for line in lines)


class OldQueue:
    """A queue type written before model affinity: its claim takes no ``prefer``."""

    def __init__(self, queue) -> None:
        self.queue = queue
        self.claims = 0

    def claim(self, worker, *, backends, lease_s):
        self.claims += 1
        return self.queue.claim(worker, backends=backends, lease_s=lease_s)

    def __getattr__(self, name):
        return getattr(self.queue, name)


def test_a_queue_type_without_affinity_is_claimed_from_oldest_first(session):
    old = OldQueue(session.queue())
    for backend in ("mock", "other", "mock"):
        old.submit(Request("x", width=8, height=8), backend=backend)
    lines: list[str] = []
    worker = Worker(
        session, old, WorkerOptions(once=True, idle_wait_s=0.02, concurrency=1), log=lines.append
    )
    assert "model affinity off (the sqlite queue claims oldest first)" in worker.banner()
    worker.run()
    assert backends_in_order(lines) == ["mock", "other", "mock"] and old.claims == 4


def test_the_banner_names_the_affinity_of_a_worker_of_several_backends(session):
    queue = session.queue()
    many = Worker(session, queue, WorkerOptions(affinity_s=90), log=print).banner()
    assert "; model affinity 90 s; concurrency" in many
    one = Worker(session, queue, WorkerOptions(backends=("mock",)), log=print).banner()
    off = Worker(session, queue, WorkerOptions(affinity_s=0), log=print).banner()
    assert "model affinity" not in one and "model affinity" not in off


def test_cli_worker_affinity_option(session, capsys):
    code, out, _ = run_cli(capsys, "worker", "--help")
    assert code == 0 and "--affinity-s" in out
    code, _, err = run_cli(capsys, "worker", "--affinity-s", "-1", "--once")
    assert code == 2 and "--affinity-s" in err
    queue = session.queue()
    for backend in ("mock", "other", "mock"):
        queue.submit(Request("x", width=8, height=8), backend=backend)
    code, _, err = run_cli(capsys, "worker", "--affinity-s", "0", "--once", "--concurrency", "1")
    assert code == 0
    assert "model affinity" not in err.splitlines()[0]
    assert backends_in_order(err.splitlines()[1:]) == ["mock", "other", "mock"]
