"""PostgreSQL queue benchmarks (imagen-postgres), each beside a baseline run in
the same process, against a throwaway PostgreSQL this script starts itself (as
the tests do: tests/pgserver.py).

    .venv/bin/python bench/postgres_queue.py [--runs 21] [--jobs 2000] [--rounds 7] [--verbose]

1. Pickup latency: from the call to ``submit`` to the job being claimed by an
   idle worker process, median of --runs. The worker sleeps in ``queue.wait()``
   (LISTEN/NOTIFY); the baseline worker is the same loop polling once a second
   (``claim``, else ``sleep(1)``). Submits come at random moments, so they fall
   anywhere in the baseline's second. Both workers run at once, on schemas of
   their own, and their runs alternate.                        target: <= 50 ms
2. Queue overhead: --jobs jobs claimed and completed through ``PostgresQueue``
   against a bare psycopg loop running the claim and complete SQL a worker would
   write by hand (``UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED)``,
   reading back id, request and backend), jobs/s, with 1 and 4 worker processes.
   Connections are opened before the clock starts; the two alternate, and the
   ratio is the median of the rounds' ratios.                  target: >= 0.8x
3. The worker end to end: ``imagen worker`` on this queue (the mock backend at
   8x8; the default sinks: PNG with its metadata, JSON sidecar, cost ledger)
   against a plain worker that imports nothing of imagen (bench/plain_worker.py:
   imagen-postgres's claim SQL, the same render, the same fsynced PNG write, the
   same complete SQL), --e2e-jobs jobs, jobs/s with 1 and 2 processes, both warm
   before the clock, alternating, median of the rounds' ratios; again with
   ``output.sidecar: false`` (one file per job, as the plain worker writes).
                                                               target: >= 0.8x
4. The worker's own cost: ``imagen worker`` with the defaults against the plain
   worker doing by hand what the defaults do (bench/plain_worker.py's
   ``Featured``), as in bench/worker.py.                      target: >= 0.8x

Both clocks are CLOCK_MONOTONIC (``time.monotonic``), shared by the processes of
one machine. The server runs with fsync off, as in the tests: the figures are
the queue's own costs, not the disk's. Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import children
from figures import Figures
from plain_worker import LEDGER, make_ledger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LATENCY_TARGET_MS = 50.0
POLL_S = 1.0
OVERHEAD_TARGET = 0.8
E2E_TARGET = 0.8
# The imagen workers measured against the plain one (as in bench/worker.py).
E2E_KINDS = {
    "imagen": "sidecar + ledger (the defaults)",
    "imagen-no-sidecar": "ledger, output.sidecar: false",
}
WARM_UP = 2
ROLE, PASSWORD = "imagen_bench", "bench-password"

RAW_CLAIM = """
UPDATE {schema}.jobs
SET status = 'running', attempts = attempts + 1, worker = %s,
    lease_until = now() + interval '60 seconds', updated_at = now()
WHERE id = (
    SELECT id FROM {schema}.jobs WHERE status = 'queued'
    ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED
)
RETURNING id, request, backend
"""
RAW_COMPLETE = """
UPDATE {schema}.jobs
SET status = 'done', result_path = %s, lease_until = NULL, updated_at = now()
WHERE id = %s
"""


def make_queue(schema: str):
    from imagen_postgres.queue import PostgresQueue
    from imagen_postgres.settings import PostgresQueueConfig

    return PostgresQueue(PostgresQueueConfig(schema=schema))


# ------------------------------------------------------------------ pickup latency


def idle_worker(schema: str, mode: str, ready, out) -> None:  # a child process
    queue = make_queue(schema)
    queue.claim("warm-up", backends=["none"], lease_s=60)  # connect, start listening
    ready.set()
    while True:
        job = queue.claim("w", backends=None, lease_s=60)
        if job is None:
            if mode == "notify":
                queue.wait(5.0)
            else:
                time.sleep(POLL_S)
            continue
        out.put((job.id, time.monotonic()))
        queue.complete(job.id, "w", result_path="-", metadata={})


def pickup_latency(runs: int) -> dict[str, list[float]]:
    from imagen_core import Request

    context = multiprocessing.get_context("spawn")
    modes = {"notify": "bench_notify", "poll": "bench_poll"}
    submitters, outs, workers = {}, {}, []
    for mode, schema in modes.items():
        submitters[mode] = make_queue(schema)
        submitters[mode].init()
        ready, outs[mode] = context.Event(), context.Queue()
        worker = context.Process(
            target=idle_worker, args=(schema, mode, ready, outs[mode]), daemon=True
        )
        worker.start()
        workers.append(worker)
        if not ready.wait(60):
            raise RuntimeError(f"the {mode} worker did not start")
    rng = random.Random(7)
    latencies: dict[str, list[float]] = {mode: [] for mode in modes}
    try:
        for run in range(WARM_UP + runs):
            order = list(modes) if run % 2 else list(modes)[::-1]
            for mode in order:
                # A random moment: anywhere in the poller's second; the listener
                # is idle in wait() by then either way.
                time.sleep(rng.uniform(0.05, POLL_S))
                started = time.monotonic()
                job = submitters[mode].submit(Request(f"run {run}"), backend="mock")
                claimed_id, claimed_at = outs[mode].get(timeout=30)
                assert claimed_id == job.id
                if run >= WARM_UP:
                    latencies[mode].append((claimed_at - started) * 1000)
    finally:
        for worker in workers:
            worker.terminate()
        for queue in submitters.values():
            queue.close()
    return latencies


# ------------------------------------------------------------------ queue overhead


def raw_loop(dsn: str, schema: str, name: str, start, out) -> None:  # a child process
    import psycopg

    claim = RAW_CLAIM.format(schema=schema).encode()
    complete = RAW_COMPLETE.format(schema=schema).encode()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(b"SELECT 1")
        start.wait()
        done = 0
        while (row := conn.execute(claim, (name,)).fetchone()) is not None:
            job_id, _request, _backend = row
            conn.execute(complete, ("-", job_id))
            done += 1
    out.put((done, time.monotonic()))


def imagen_loop(dsn: str, schema: str, name: str, start, out) -> None:  # a child process
    queue = make_queue(schema)
    queue.claim(name, backends=["none"], lease_s=60)  # connect both connections
    start.wait()
    done = 0
    while (job := queue.claim(name, backends=None, lease_s=60)) is not None:
        queue.complete(job.id, name, result_path="-", metadata={})
        done += 1
    out.put((done, time.monotonic()))
    queue.close()


def refill(admin: str, schema: str, jobs: int, size: int = 64) -> None:
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {schema}.jobs RESTART IDENTITY".encode())
        conn.execute(
            f"INSERT INTO {schema}.jobs (request, backend) "
            "SELECT jsonb_build_object('prompt', 'job ' || n, 'width', "
            f"{size}, 'height', {size}, 'steps', 1), 'mock' "
            f"FROM generate_series(1, {jobs}) AS n".encode()
        )
        conn.execute(f"VACUUM ANALYZE {schema}.jobs".encode())


def jobs_per_s(loop, dsn: str, admin: str, schema: str, jobs: int, processes: int) -> float:
    refill(admin, schema, jobs)
    context = multiprocessing.get_context("spawn")
    # Every worker connected and waiting, and this process: then the clock starts.
    start, out = context.Barrier(processes + 1), context.Queue()
    workers = [
        context.Process(target=loop, args=(dsn, schema, f"w{n}", start, out))
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    start.wait(timeout=120)
    started = time.monotonic()
    results = [out.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    done = sum(count for count, _ in results)
    assert done == jobs, (loop.__name__, done, jobs)
    return jobs / (max(end for _, end in results) - started)


# ------------------------------------------------------------------ end to end


def e2e_child(kind: str, dsn: str, schema: str, folder: str, name: str, start, out) -> None:
    """One worker process (spawned): set up warm, wait for the others, work until
    the queue is empty, report (jobs, start, end)."""

    def run() -> tuple[int, float, float]:
        work = Path(folder)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)  # imagen worker's one line per job: written, not shown
        if kind == "plain":
            sys.path.insert(0, str(ROOT / "bench"))
            from plain_worker import PostgresWorker

            work_loop = PostgresWorker(dsn, schema, work / "plain" / "jobs", name).run
        elif kind == "featured":
            sys.path.insert(0, str(ROOT / "bench"))
            from plain_worker import FeaturedPostgresWorker

            images = work / "plain" / "jobs"
            work_loop = FeaturedPostgresWorker(dsn, schema, images, name, work / LEDGER).run
        else:
            from worker import imagen_worker

            queue = {"type": "postgres", "schema": schema}
            work_loop = imagen_worker(work, queue, sidecar=kind == "imagen")
        return children.timed(work_loop, start)

    children.child(run, start, out)


def e2e_rate(
    kind: str, dsn: str, admin: str, schema: str, folder: Path, jobs: int, processes: int
) -> float:
    refill(admin, schema, jobs, size=8)
    # Each run writes into a new, empty folder (removed afterwards).
    work = Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=folder))
    if kind == "featured":
        make_ledger(work / LEDGER)
    return children.jobs_per_s(
        e2e_child, lambda n: (kind, dsn, schema, str(work), f"{kind}-{n}"), processes, work, jobs
    )


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="pickup latency runs (median)")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput round")
    parser.add_argument("--rounds", type=int, default=7, help="throughput rounds (median)")
    parser.add_argument("--e2e-jobs", type=int, default=1000, help="jobs per end-to-end round")
    parser.add_argument(
        "--only", default="latency,queue,e2e", help="which figures: latency, queue, e2e"
    )
    parser.add_argument("--verbose", action="store_true", help="print every round's figures")
    args = parser.parse_args()
    only = set(args.only.split(","))

    from tests.pgserver import start_postgres

    server = start_postgres()
    try:
        database = server.create_database("imagen_bench")
        server.create_role(ROLE, PASSWORD, database)
        dsn, admin = server.dsn(database, ROLE, PASSWORD), server.dsn(database)
        os.environ["IMAGEN_DATABASE_URL"] = dsn  # inherited by the worker processes
        throughput_schema = "bench_throughput"
        make_queue(throughput_schema).init()

        latencies = pickup_latency(args.runs) if "latency" in only else {}
        rates: dict[tuple[str, int], list[float]] = {}
        for processes in (1, 4) if "queue" in only else ():
            for round_ in range(args.rounds):
                # Alternate which goes first, so that drift favours neither.
                loops = (raw_loop, imagen_loop) if round_ % 2 == 0 else (imagen_loop, raw_loop)
                for loop in loops:
                    rate = jobs_per_s(loop, dsn, admin, throughput_schema, args.jobs, processes)
                    rates.setdefault((loop.__name__, processes), []).append(rate)
        e2e: dict[tuple[str, int], list[float]] = {}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            os.environ["HOME"] = str(folder)
            os.environ["XDG_DATA_HOME"] = str(folder / "data")
            for processes in (1, 2) if "e2e" in only else ():
                for round_ in range(args.rounds):
                    kinds = ["plain", "featured", *E2E_KINDS]
                    for kind in kinds if round_ % 2 == 0 else kinds[::-1]:
                        rate = e2e_rate(
                            kind, dsn, admin, throughput_schema, folder, args.e2e_jobs, processes
                        )
                        e2e.setdefault((kind, processes), []).append(rate)
    finally:
        server.stop()

    figures = Figures("postgres_queue")
    if latencies:
        notify, poll = statistics.median(latencies["notify"]), statistics.median(latencies["poll"])
        figures.add(
            f"pickup latency, submit -> claimed, median of {args.runs}",
            notify,
            unit="ms",
            at_most=LATENCY_TARGET_MS,
            baseline=f"{poll:.1f} ms (polls 1/s)",
            measured=f"slowest {max(latencies['notify']):.1f} ms",
        )
    for processes in (1, 4) if "queue" in only else ():
        raw_rates, our_rates = rates[("raw_loop", processes)], rates[("imagen_loop", processes)]
        figures.add_rates(
            f"claim+complete, {processes} process(es), {args.jobs} jobs, jobs/s",
            raw_rates,
            our_rates,
            at_least=OVERHEAD_TARGET,
        )
        if args.verbose:
            print(
                f"  rounds: raw {[round(r) for r in raw_rates]}, "
                f"imagen {[round(r) for r in our_rates]}"
            )
    for processes, (kind, what) in itertools.product(
        (1, 2) if "e2e" in only else (), E2E_KINDS.items()
    ):
        plain_rates, our_rates = e2e[("plain", processes)], e2e[(kind, processes)]
        figures.add_rates(
            f"imagen worker end to end vs a plain worker (mock 8x8, {what}), "
            f"{processes} process(es), jobs/s",
            plain_rates,
            our_rates,
            at_least=E2E_TARGET,
            ratio_of_medians=True,
        )
        if args.verbose:
            print(
                f"  rounds: plain {[round(r) for r in plain_rates]}, "
                f"{kind} {[round(r) for r in our_rates]}"
            )
    for processes in (1, 2) if "e2e" in only else ():
        figures.add_rates(
            "imagen worker's own cost: the defaults vs a plain worker doing the same work"
            f" by hand (mock 8x8), {processes} process(es), jobs/s",
            e2e[("featured", processes)],
            e2e[("imagen", processes)],
            at_least=E2E_TARGET,
            ratio_of_medians=True,
        )
    return figures.report()


if __name__ == "__main__":
    sys.exit(main())
