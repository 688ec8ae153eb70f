"""Fleet scheduling: model affinity against oldest-first claiming, in one run.

    .venv/bin/python bench/fleet.py [--jobs 100] [--rounds 3] [--verbose]

Two GPU servers, each a fake ComfyUI of the tests (tests/comfyui/fake_comfyui.py:
real protocol) that charges 300 ms when a prompt's model is not the previous
prompt's (a GPU holds one model) and 50 ms per image; each serves two models,
the backend instances ``flux`` and ``sd35`` (the bundled flux1-schnell and
sd35-medium workflows). Two ``imagen worker`` processes, one per server as a
fleet runs them, with their default concurrency, on one PostgreSQL queue (a
throwaway server, as the tests start one).

Each run inserts --jobs jobs alternating between the two backends (one INSERT)
into the idle workers' queue. Makespan: from the insert to the last job done,
both on the database's clock (``created_at``, the last ``updated_at``).

1. Makespan with model affinity (``imagen worker``'s default bound, 60 s)
   against oldest-first claiming (``--affinity-s 0``), the two alternating in
   each round; the figure is the median of the rounds' ratios. target: <= 0.6x
2. No job passed over for longer than the bound. A trigger records every claim
   (``clock_timestamp()``); a job is passed over when a job of another backend
   submitted after it is claimed before it. The bound is measured between
   submissions: how much later than the job the jobs that overtook it were
   submitted (< the bound). With two workers for two models each keeps to one
   and the bound is never approached, so a third run in each round makes it
   bite: one worker alone, the jobs submitted one every 20 ms (faster than it
   runs them), a bound of 0.5 s; the worker switches models each time a job
   of the other one has been passed over for that long. Its longest pass-over
   must stay under 0.5 s. Shown beside it: the wall time from a job's first
   pass-over to its claim, which grows with the backlog (as every wait does:
   the bound counts submissions, so a backlog does not turn affinity off).

Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from figures import Figures

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SWITCH_S = 0.3
IMAGE_S = 0.05
MAKESPAN_TARGET = 0.6
DEFAULT_BOUND_S = 60.0  # imagen worker's default --affinity-s
SHORT_BOUND_S = 0.5
STREAM_EVERY_S = 0.02
BACKENDS = {"flux": "flux1-schnell", "sd35": "sd35-medium"}
SCHEMA = "fleet"

CLAIMS = f"""
CREATE TABLE {SCHEMA}.claims (
    job bigint NOT NULL,
    backend text NOT NULL,
    created_at timestamptz NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE FUNCTION {SCHEMA}.record_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {SCHEMA}.claims (job, backend, created_at)
    VALUES (NEW.seq, NEW.backend, NEW.created_at);
    RETURN NULL;
END $$;
CREATE TRIGGER record_claim AFTER UPDATE OF status ON {SCHEMA}.jobs FOR EACH ROW
    WHEN (NEW.status = 'running' AND OLD.status IS DISTINCT FROM 'running')
    EXECUTE FUNCTION {SCHEMA}.record_claim();
"""
INSERT_ALL = f"""
INSERT INTO {SCHEMA}.jobs (request, backend)
SELECT jsonb_build_object('prompt', 'job ' || n, 'width', 64, 'height', 64, 'steps', 4,
                          'seed', n),
       CASE WHEN n %% 2 = 1 THEN 'flux' ELSE 'sd35' END
FROM generate_series(1, %s) AS n
"""
INSERT_ONE = f"""
INSERT INTO {SCHEMA}.jobs (request, backend)
VALUES (jsonb_build_object('prompt', 'job ' || %s, 'width', 64, 'height', 64, 'steps', 4,
                           'seed', %s), %s)
"""


@dataclass(frozen=True)
class Run:
    makespan_s: float
    switches: int
    passed_over_s: float  # the most a job was overtaken by, in submission time
    passed_over_wall_s: float  # the longest from a job's first pass-over to its claim


def config(folder: Path, url: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "imagen.yaml"
    blocks = "".join(
        f"  {name}: {{type: comfyui, url: '{url}', workflow: {workflow}, timeout_s: 120}}\n"
        for name, workflow in BACKENDS.items()
    )
    path.write_text(
        f"output: {{dir: '{folder / 'out'}', preview: off}}\n"
        f"queue: {{type: postgres, schema: {SCHEMA}}}\n"
        f"backends:\n{blocks}"
    )
    return path


def start_worker(folder: Path, url: str, affinity_s: float) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "IMAGEN_CONFIG": str(config(folder, url)),
        "IMAGEN_LOAD_PLUGINS": "imagen-comfyui,imagen-postgres",
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
    }
    code = f"from imagen_core.cli import main; main(['worker', '--affinity-s', '{affinity_s}'])"
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    banner = proc.stderr.readline()  # said once the worker is about to claim
    if not banner.startswith("imagen: worker "):
        proc.kill()
        raise RuntimeError(f"the worker did not start: {banner}{proc.stderr.read()}")
    return proc


def stop(workers: list[subprocess.Popen[str]]) -> None:
    for proc in workers:
        proc.send_signal(signal.SIGTERM)
    for proc in workers:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stderr is not None
        proc.stderr.close()


def one_run(admin: str, fakes, folder: Path, jobs: int, affinity_s: float, stream: bool) -> Run:
    """``jobs`` jobs run by one worker per fake server of ``fakes``."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {SCHEMA}.jobs, {SCHEMA}.claims RESTART IDENTITY".encode())
        for fake in fakes:  # a fresh GPU: nothing loaded yet
            fake.loaded, fake.model_switches = (), 0
        workers = [
            start_worker(folder / f"gpu-{n}", fake.url, affinity_s) for n, fake in enumerate(fakes)
        ]
        try:
            if stream:
                started = time.monotonic()
                names = list(BACKENDS)
                for n in range(1, jobs + 1):
                    delay = started + (n - 1) * STREAM_EVERY_S - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    conn.execute(INSERT_ONE.encode(), (n, n, names[(n - 1) % 2]))
            else:
                conn.execute(INSERT_ALL.encode(), (jobs,))
            deadline = time.monotonic() + 600
            query = f"SELECT count(*) FROM {SCHEMA}.jobs WHERE status IN ('queued', 'running')"
            while conn.execute(query.encode()).fetchone() != (0,):
                if time.monotonic() > deadline:
                    raise RuntimeError("the fleet did not finish in 10 minutes")
                time.sleep(0.05)
        finally:
            stop(workers)
        (failed,) = conn.execute(
            f"SELECT count(*) FROM {SCHEMA}.jobs WHERE status <> 'done'".encode()
        ).fetchone()
        if failed:
            raise RuntimeError(f"{failed} job(s) did not end done")
        span = f"SELECT extract(epoch FROM max(updated_at) - min(created_at)) FROM {SCHEMA}.jobs"
        (makespan,) = conn.execute(span.encode()).fetchone()
        # For each job: the jobs of another backend submitted after it and
        # claimed before it (its first claim; a job is claimed once here).
        over, wall = conn.execute(
            f"""
            SELECT coalesce(max(extract(epoch FROM p.created_at - x.created_at)), 0),
                   coalesce(max(extract(epoch FROM x.at - p.at)), 0)
            FROM {SCHEMA}.claims AS x JOIN {SCHEMA}.claims AS p
              ON p.job > x.job AND p.backend <> x.backend AND p.at < x.at
            """.encode()
        ).fetchone()
    return Run(
        float(makespan), sum(fake.model_switches for fake in fakes), float(over), float(wall)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs per run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (median of the ratios)")
    parser.add_argument("--verbose", action="store_true", help="print every run's figures")
    args = parser.parse_args()

    from imagen_postgres.queue import PostgresQueue
    from imagen_postgres.settings import PostgresQueueConfig
    from tests.comfyui.fake_comfyui import FakeComfyUI
    from tests.pgserver import start_postgres

    server = start_postgres()
    fakes = [FakeComfyUI().start() for _ in range(2)]
    runs: dict[str, list[Run]] = {"oldest": [], "affinity": [], "short": []}
    modes = {  # bound, one job every STREAM_EVERY_S (else all at once), servers
        "oldest": (0.0, False, 2),
        "affinity": (DEFAULT_BOUND_S, False, 2),
        "short": (SHORT_BOUND_S, True, 1),
    }
    try:
        for fake in fakes:
            fake.script.delay_s = IMAGE_S
            fake.script.model_switch_s = SWITCH_S
            fake.script.previews = False
        database = server.create_database("imagen_fleet")
        admin = server.dsn(database)
        os.environ["IMAGEN_DATABASE_URL"] = admin  # inherited by the workers
        queue = PostgresQueue(PostgresQueueConfig(schema=SCHEMA))
        queue.init()
        queue.close()
        server.execute(CLAIMS, database)
        with tempfile.TemporaryDirectory(prefix="imagen-bench-fleet-") as tmp:
            for round_ in range(args.rounds):
                # Alternate which goes first, so that drift favours neither.
                order = ["oldest", "affinity", "short"]
                if round_ % 2:
                    order = ["affinity", "oldest", "short"]
                for mode in order:
                    bound, stream, servers = modes[mode]
                    run = one_run(admin, fakes[:servers], Path(tmp), args.jobs, bound, stream)
                    runs[mode].append(run)
                    if args.verbose:
                        print(f"  round {round_ + 1} {mode}: {run}", flush=True)
    finally:
        for fake in fakes:
            fake.stop()
        server.stop()

    figures = Figures("fleet")
    oldest, affinity, short = runs["oldest"], runs["affinity"], runs["short"]
    ratio = statistics.median(
        a.makespan_s / o.makespan_s for a, o in zip(affinity, oldest, strict=True)
    )

    def median(values: list[float]) -> float:
        return statistics.median(values)

    figures.add(
        f"makespan, {args.jobs} jobs of 2 models, 2 workers, affinity vs oldest-first",
        ratio,
        at_most=MAKESPAN_TARGET,
        baseline=f"{median([r.makespan_s for r in oldest]):.2f} s, "
        f"{median([r.switches for r in oldest]):.0f} switches",
        measured=f"{median([r.makespan_s for r in affinity]):.2f} s, "
        f"{median([r.switches for r in affinity]):.0f} switches",
    )
    figures.add(
        f"longest pass-over, bound {DEFAULT_BOUND_S:g} s (submission time)",
        max(r.passed_over_s for r in affinity) * 1000,
        unit="ms",
        at_most=DEFAULT_BOUND_S * 1000,
        measured=f"wall {max(r.passed_over_wall_s for r in affinity):.2f} s",
    )
    figures.add(
        f"longest pass-over, bound {SHORT_BOUND_S:g} s, 1 worker, a job every "
        f"{STREAM_EVERY_S * 1000:.0f} ms (submission time)",
        max(r.passed_over_s for r in short) * 1000,
        unit="ms",
        at_most=SHORT_BOUND_S * 1000,
        measured=f"wall {max(r.passed_over_wall_s for r in short):.2f} s; makespan "
        f"{median([r.makespan_s for r in short]):.2f} s, "
        f"{median([r.switches for r in short]):.0f} switches",
    )
    return figures.report()


if __name__ == "__main__":
    sys.exit(main())
