"""wait(): LISTEN/NOTIFY wakes an idle worker as soon as a job is queued, whoever
queued it, and never sleeps through one.

The bounds below are functional (a woken wait returns long before its timeout),
not benchmarks: bench/postgres_queue.py measures the pickup latency.
"""

from __future__ import annotations

import select
import threading
import time

from imagen_core.models import Request

LONG = 10.0  # a timeout that a working wake-up never gets near
PROMPT = 2.0  # "returned well before LONG"


def timed_wait(queue, timeout: float) -> float:
    start = time.monotonic()
    queue.wait(timeout)
    return time.monotonic() - start


def later(delay: float, action) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        action()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def idle(queue) -> None:
    """What a worker does before it waits: look, and find nothing."""
    assert queue.claim("worker", backends=None, lease_s=60) is None


def test_wait_without_news_lasts_its_timeout(queue):
    idle(queue)
    assert 0.25 <= timed_wait(queue, 0.3) < PROMPT
    assert timed_wait(queue, 0) < PROMPT


def test_a_submit_from_another_machine_wakes_the_worker(make_queue):
    worker, web = make_queue(), make_queue()
    worker.init()
    idle(worker)
    thread = later(0.2, lambda: web.submit(Request("a fox"), backend="mock"))
    assert timed_wait(worker, LONG) < PROMPT
    thread.join()
    assert worker.claim("worker", backends=None, lease_s=60) is not None


def test_a_row_inserted_with_plain_sql_wakes_the_worker_and_is_claimable(queue, sql, schema):
    # What a web app does: no imagen involved, only the documented columns.
    idle(queue)
    insert = (
        f"INSERT INTO {schema}.jobs (request, backend) "
        """VALUES ('{"prompt": "a fox", "width": 512, "height": 512}', 'flux') RETURNING id"""
    )
    rows: list = []
    thread = later(0.2, lambda: rows.extend(sql(insert)))
    assert timed_wait(queue, LONG) < PROMPT
    thread.join()
    job = queue.claim("worker", backends=["flux"], lease_s=60)
    assert job is not None and job.id == str(rows[0]["id"])
    assert (job.request, job.backend, job.max_attempts) == (
        Request("a fox", width=512, height=512, backend="flux"),
        "flux",
        3,
    )


def test_a_job_queued_between_the_claim_and_the_wait_is_not_slept_through(make_queue):
    worker, web = make_queue(), make_queue()
    worker.init()
    idle(worker)
    web.submit(Request("quick"), backend="mock")  # before the worker starts waiting
    assert timed_wait(worker, LONG) < PROMPT


def test_a_job_queued_before_a_worker_ever_claimed_is_found_by_its_first_claim(make_queue):
    worker, web = make_queue(), make_queue()
    worker.init()
    web.submit(Request("early"), backend="mock")
    assert worker.claim("worker", backends=None, lease_s=60) is not None


def test_a_requeued_job_wakes_the_workers_too(make_queue):
    waiting, busy = make_queue(), make_queue()
    waiting.init()
    first = busy.submit(Request("given back"), backend="mock")
    second = busy.submit(Request("failed once"), backend="mock")
    busy.claim("busy", backends=None, lease_s=60)
    busy.claim("busy", backends=None, lease_s=60)
    idle(waiting)
    thread = later(0.2, lambda: busy.release(first.id, "busy"))
    assert timed_wait(waiting, LONG) < PROMPT
    thread.join()
    assert waiting.claim("worker", backends=None, lease_s=60).id == first.id
    idle(waiting)
    thread = later(0.2, lambda: busy.fail(second.id, "busy", error="flaky"))
    assert timed_wait(waiting, LONG) < PROMPT
    thread.join()


def test_claims_forget_the_news_they_already_covered(queue, sql, schema):
    idle(queue)  # listening from here on
    # Three jobs in one transaction: one notification (PostgreSQL folds them).
    sql(
        f"INSERT INTO {schema}.jobs (request, backend) "
        """SELECT '{"prompt": "job"}', 'mock' FROM generate_series(1, 3)"""
    )
    listening = queue._listener._conn.pgconn.socket
    assert select.select([listening], [], [], LONG)[0]  # it has arrived
    for _ in range(3):
        assert queue.claim("worker", backends=None, lease_s=60) is not None
    # The claims covered what it announced: nothing to wake for.
    assert timed_wait(queue, 0.3) >= 0.25


def test_queues_in_other_schemas_do_not_wake_each_other(make_queue, dsn):
    from imagen_postgres.queue import PostgresQueue
    from imagen_postgres.settings import PostgresQueueConfig

    ours = make_queue()
    ours.init()
    other = PostgresQueue(PostgresQueueConfig(schema=ours.config.schema + "_other"))
    try:
        other.init()
        idle(ours)
        other.submit(Request("elsewhere"), backend="mock")
        assert timed_wait(ours, 0.3) >= 0.25
    finally:
        other.close()
        from psycopg import connect

        with connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {other.config.schema} CASCADE".encode())


def test_a_lost_listening_connection_is_replaced(queue, make_queue, sql):
    idle(queue)
    pid = queue._listener._conn.info.backend_pid
    sql("SELECT pg_terminate_backend(%s)", (pid,))
    # Notifications may have been lost with it: the next wait returns at once ...
    assert timed_wait(queue, LONG) < PROMPT
    idle(queue)
    assert queue._listener._conn.info.backend_pid != pid
    # ... and the new connection hears again.
    web = make_queue()
    thread = later(0.2, lambda: web.submit(Request("after"), backend="mock"))
    assert timed_wait(queue, LONG) < PROMPT
    thread.join()


def test_wait_on_an_unreachable_database_just_waits(make_queue, monkeypatch):
    monkeypatch.setenv("NOWHERE_URL", "postgresql://u:pw@127.0.0.1:1/db?connect_timeout=2")
    queue = make_queue(dsn_env="NOWHERE_URL")
    assert 0.25 <= timed_wait(queue, 0.3) < PROMPT  # no exception, no busy loop


def test_the_transaction_pooler_is_named_when_waiting(make_queue, monkeypatch, capsys):
    monkeypatch.setenv("POOLER_URL", "postgresql://u:pw@127.0.0.1:6543/db?connect_timeout=2")
    queue = make_queue(dsn_env="POOLER_URL")
    queue.wait(0.05)
    queue.wait(0.05)
    err = capsys.readouterr().err
    assert err.count("transaction pooler") == 1 and "session pooler (port 5432)" in err
    assert "pw" not in err


def test_two_threads_may_wait_on_one_queue(queue, make_queue):
    idle(queue)
    durations: list[float] = []
    threads = [
        threading.Thread(target=lambda: durations.append(timed_wait(queue, 0.3))) for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(durations) == 2 and max(durations) < PROMPT
