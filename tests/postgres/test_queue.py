"""Every method of the queue contract on a real PostgreSQL, with its edge cases."""

from __future__ import annotations

import datetime as dt
import time
import uuid

import attrs
import pytest

from imagen_core.errors import UsageError
from imagen_core.models import Request
from imagen_postgres.queue import PostgresQueue

FOX = Request("a fox in the snow", negative="blurry", width=640, height=480, seed=7, steps=20)


def expire(sql, schema: str, job_id: str) -> None:
    """Let a lease run out now (what waiting for it would do, without the wait)."""
    sql(
        f"UPDATE {schema}.jobs SET lease_until = now() - interval '1 second' WHERE id = %s",
        (job_id,),
    )


# ------------------------------------------------------------------ submit, get


def test_submit_returns_a_queued_job(queue: PostgresQueue):
    job = queue.submit(FOX, backend="flux", max_attempts=5)
    uuid.UUID(job.id)
    assert (job.status, job.backend, job.attempts, job.max_attempts) == ("queued", "flux", 0, 5)
    assert job.request == attrs.evolve(FOX, backend="flux")  # the job's backend, as sqlite's
    assert job.worker is job.lease_until is job.result_path is job.error is None
    assert job.metadata == {}
    assert job.created_at.tzinfo == dt.timezone.utc
    assert abs(job.created_at - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=30)
    assert queue.get(job.id) == job


def test_the_request_round_trips(queue: PostgresQueue):
    request = Request(
        "a lighthouse",
        seed=2**64 - 1,
        style="blog-header",
        backend="flux",
        extra={"cfg": 3.5, "loras": ["a", "b"], "nested": {"x": None}},
    )
    job = queue.submit(request, backend="flux")
    assert queue.get(job.id).request == request
    plain = queue.submit(Request("plain"), backend="mock")
    assert queue.get(plain.id).request == Request("plain", backend="mock")


def test_submit_refuses_what_no_worker_could_run(queue: PostgresQueue):
    with pytest.raises(UsageError, match="max_attempts must be at least 1"):
        queue.submit(FOX, backend="mock", max_attempts=0)
    with pytest.raises(UsageError, match="backend"):
        queue.submit(FOX, backend="")
    with pytest.raises(UsageError, match="JSON"):
        queue.submit(Request("x", extra={"when": object()}), backend="mock")
    assert queue.list() == []


def test_get_unknown_or_malformed_id_is_none(queue: PostgresQueue):
    assert queue.get(str(uuid.uuid4())) is None
    assert queue.get("not-a-uuid") is None
    assert queue.get("") is None


# ------------------------------------------------------------------ claim


def test_claim_takes_the_oldest_first(queue: PostgresQueue):
    ids = [queue.submit(Request(f"job {n}"), backend="mock").id for n in range(5)]
    claimed = [queue.claim("w", backends=None, lease_s=60) for _ in range(5)]
    assert [job.id for job in claimed] == ids
    assert queue.claim("w", backends=None, lease_s=60) is None


def test_claim_makes_the_job_running_with_a_lease_from_the_database_clock(queue, sql, schema):
    job = queue.submit(FOX, backend="mock")
    claimed = queue.claim("gpu-1", backends=None, lease_s=90)
    assert (claimed.id, claimed.status, claimed.worker, claimed.attempts) == (
        job.id,
        "running",
        "gpu-1",
        1,
    )
    [row] = sql(f"SELECT lease_until - now() AS left FROM {schema}.jobs WHERE id = %s", (job.id,))
    assert dt.timedelta(seconds=85) < row["left"] <= dt.timedelta(seconds=90)
    assert claimed.updated_at >= job.updated_at


def test_claim_filters_by_backend(queue: PostgresQueue):
    flux = queue.submit(Request("a"), backend="flux")
    sd = queue.submit(Request("b"), backend="sd35")
    assert queue.claim("w", backends=["comfy"], lease_s=60) is None
    assert queue.claim("w", backends=[], lease_s=60) is None
    assert queue.claim("w", backends=("sd35", "other"), lease_s=60).id == sd.id
    assert queue.claim("w", backends=["sd35"], lease_s=60) is None
    assert queue.get(flux.id).status == "queued"  # waits for a worker that serves it
    assert queue.claim("w", backends=None, lease_s=60).id == flux.id


def test_a_running_job_with_a_live_lease_is_not_claimed_again(queue: PostgresQueue):
    queue.submit(FOX, backend="mock")
    assert queue.claim("a", backends=None, lease_s=60) is not None
    assert queue.claim("b", backends=None, lease_s=60) is None


def test_an_expired_lease_is_claimed_again_and_the_attempt_counts(queue, sql, schema):
    job = queue.submit(FOX, backend="mock")
    queue.claim("dead", backends=None, lease_s=60)
    expire(sql, schema, job.id)
    again = queue.claim("alive", backends=None, lease_s=60)
    assert (again.id, again.worker, again.attempts, again.status) == (job.id, "alive", 2, "running")
    # The dead worker, back from the grave, owns nothing any more.
    assert queue.heartbeat(job.id, "dead", lease_s=60) is False
    assert queue.complete(job.id, "dead", result_path="/x.png", metadata={}) is False
    assert queue.get(job.id).worker == "alive"


def test_a_real_short_lease_expires(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.claim("a", backends=None, lease_s=0.05)
    time.sleep(0.1)
    assert queue.claim("b", backends=None, lease_s=60).id == job.id


def test_an_expired_lease_after_the_last_attempt_fails_the_job(queue, sql, schema):
    # A worker that died on the job's last attempt: the job may be what brings
    # workers down, so it fails instead of going to yet another worker.
    job = queue.submit(Request("heavy"), backend="mock", max_attempts=1)
    queue.claim("w1", backends=None, lease_s=60)
    expire(sql, schema, job.id)
    assert queue.claim("w2", backends=None, lease_s=60) is None
    failed = queue.get(job.id)
    assert (failed.status, failed.attempts, failed.worker) == ("failed", 1, "w1")
    assert failed.error.startswith(
        "its worker stopped (killed, crashed or lost) during each of its 1 attempts"
    )
    assert queue.heartbeat(job.id, "w1", lease_s=60) is False


# ------------------------------------------------------------------ heartbeat


def test_heartbeat_extends_the_lease(queue, sql, schema):
    job = queue.submit(FOX, backend="mock")
    queue.claim("w", backends=None, lease_s=5)
    assert queue.heartbeat(job.id, "w", lease_s=300) is True
    [row] = sql(f"SELECT lease_until - now() AS left FROM {schema}.jobs WHERE id = %s", (job.id,))
    assert row["left"] > dt.timedelta(seconds=290)


def test_heartbeat_after_an_expired_lease_nobody_took_still_succeeds(queue, sql, schema):
    job = queue.submit(FOX, backend="mock")
    queue.claim("slow", backends=None, lease_s=60)
    expire(sql, schema, job.id)
    assert queue.heartbeat(job.id, "slow", lease_s=60) is True
    assert queue.claim("other", backends=None, lease_s=60) is None


def test_heartbeat_is_false_for_others_and_for_unknown_jobs(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    assert queue.heartbeat(job.id, "w", lease_s=60) is False  # queued: nobody owns it
    queue.claim("w", backends=None, lease_s=60)
    assert queue.heartbeat(job.id, "intruder", lease_s=60) is False
    assert queue.heartbeat(str(uuid.uuid4()), "w", lease_s=60) is False
    assert queue.heartbeat("nope", "w", lease_s=60) is False


# ------------------------------------------------------------------ complete, fail, release


def test_complete_records_the_result(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.claim("w", backends=None, lease_s=60)
    metadata = {"seed": 7, "latency_s": 1.5, "path": __import__("pathlib").Path("/a/b.png")}
    assert queue.complete(job.id, "w", result_path="/out/a.png", metadata=metadata) is True
    done = queue.get(job.id)
    assert (done.status, done.result_path, done.lease_until, done.worker) == (
        "done",
        "/out/a.png",
        None,
        "w",
    )
    assert done.metadata == {"seed": 7, "latency_s": 1.5, "path": "/a/b.png"}
    # Done is final: nothing moves it again.
    assert queue.complete(job.id, "w", result_path="/other.png", metadata={}) is False
    assert queue.fail(job.id, "w", error="late") is False
    assert queue.release(job.id, "w") is False
    assert queue.heartbeat(job.id, "w", lease_s=60) is False
    assert queue.get(job.id) == done


def test_a_non_owner_changes_nothing(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.claim("owner", backends=None, lease_s=60)
    before = queue.get(job.id)
    assert queue.complete(job.id, "other", result_path="/x.png", metadata={"a": 1}) is False
    assert queue.fail(job.id, "other", error="boom") is False
    assert queue.release(job.id, "other") is False
    assert queue.get(job.id) == before
    for call in (queue.complete, queue.fail, queue.release):
        kwargs = {"complete": {"result_path": "/x", "metadata": {}}, "fail": {"error": "e"}}
        assert call("not-a-uuid", "owner", **kwargs.get(call.__name__, {})) is False
        assert call(str(uuid.uuid4()), "owner", **kwargs.get(call.__name__, {})) is False


def test_fail_requeues_until_max_attempts_then_fails(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock", max_attempts=3)
    for attempt in (1, 2):
        claimed = queue.claim("w", backends=None, lease_s=60)
        assert claimed.attempts == attempt
        assert queue.fail(job.id, "w", error=f"boom {attempt}") is True
        requeued = queue.get(job.id)
        assert (requeued.status, requeued.error, requeued.worker) == (
            "queued",
            f"boom {attempt}",
            None,
        )
        assert requeued.lease_until is None
    assert queue.claim("w", backends=None, lease_s=60).attempts == 3
    assert queue.fail(job.id, "w", error="boom 3") is True
    failed = queue.get(job.id)
    assert (failed.status, failed.attempts, failed.error) == ("failed", 3, "boom 3")
    assert queue.claim("w", backends=None, lease_s=60) is None
    assert queue.fail(job.id, "w", error="again") is False


def test_a_retried_job_keeps_its_place_in_line(queue: PostgresQueue):
    first = queue.submit(Request("first"), backend="mock")
    queue.submit(Request("second"), backend="mock")
    queue.claim("w", backends=None, lease_s=60)
    queue.fail(first.id, "w", error="flaky")
    assert queue.claim("w", backends=None, lease_s=60).id == first.id


def test_complete_after_a_failed_attempt_clears_the_error(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.claim("w", backends=None, lease_s=60)
    queue.fail(job.id, "w", error="flaky")
    queue.claim("w", backends=None, lease_s=60)
    queue.complete(job.id, "w", result_path="/a.png", metadata={})
    assert queue.get(job.id).error is None


def test_release_requeues_without_counting_the_attempt(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock", max_attempts=1)
    queue.claim("w", backends=None, lease_s=60)
    assert queue.release(job.id, "w") is True
    released = queue.get(job.id)
    assert (released.status, released.attempts, released.worker, released.lease_until) == (
        "queued",
        0,
        None,
        None,
    )
    # Its one attempt is still there to be made.
    again = queue.claim("w2", backends=None, lease_s=60)
    assert (again.id, again.attempts) == (job.id, 1)
    assert queue.release(job.id, "w") is False  # w gave it away


# ------------------------------------------------------------------ cancel


def test_cancel_a_queued_job(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    canceled = queue.cancel(job.id)
    assert canceled.id == job.id and canceled.status == "canceled"
    assert queue.get(job.id).status == "canceled"
    assert queue.claim("w", backends=None, lease_s=60) is None


def test_cancel_a_running_job_its_worker_sees_on_the_next_heartbeat(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.claim("w", backends=None, lease_s=60)
    canceled = queue.cancel(job.id)
    assert (canceled.status, canceled.worker, canceled.lease_until) == ("canceled", "w", None)
    assert queue.heartbeat(job.id, "w", lease_s=60) is False
    assert queue.complete(job.id, "w", result_path="/x.png", metadata={}) is False
    assert queue.fail(job.id, "w", error="x") is False
    assert queue.release(job.id, "w") is False
    assert queue.get(job.id).status == "canceled"


def test_cancel_a_finished_job_returns_it_unchanged(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.claim("w", backends=None, lease_s=60)
    queue.complete(job.id, "w", result_path="/a.png", metadata={})
    done = queue.get(job.id)
    assert queue.cancel(job.id) == done


def test_cancel_unknown_is_none(queue: PostgresQueue):
    assert queue.cancel(str(uuid.uuid4())) is None
    assert queue.cancel("not-a-uuid") is None


# ------------------------------------------------------------------ list


def test_list_is_newest_first_with_a_status_filter_and_a_limit(queue: PostgresQueue):
    ids = [queue.submit(Request(f"job {n}"), backend="mock").id for n in range(4)]
    queue.claim("w", backends=None, lease_s=60)  # ids[0] runs
    queue.cancel(ids[2])
    assert [job.id for job in queue.list()] == ids[::-1]
    assert [job.id for job in queue.list(limit=2)] == [ids[3], ids[2]]
    assert [job.id for job in queue.list(status="queued")] == [ids[3], ids[1]]
    assert [job.id for job in queue.list(status="running")] == [ids[0]]
    assert [job.id for job in queue.list(status="canceled")] == [ids[2]]
    assert queue.list(status="done") == []
    assert queue.list(limit=0) == []
    assert queue.list(limit=-1) == []


def test_list_rejects_an_unknown_status(queue: PostgresQueue):
    with pytest.raises(UsageError, match=r"unknown job status 'finished'.*queued, running"):
        queue.list(status="finished")


def test_jobs_serialise_for_json_output(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    data = queue.get(job.id).as_dict()
    assert data["request"]["prompt"] == FOX.prompt and data["status"] == "queued"
    assert data["created_at"].endswith("+00:00")


# ------------------------------------------------------------------ lifecycle


def test_close_is_idempotent_and_the_queue_reconnects(queue: PostgresQueue):
    job = queue.submit(FOX, backend="mock")
    queue.close()
    queue.close()
    assert queue.get(job.id).id == job.id


def test_the_repr_names_no_secret(queue: PostgresQueue, dsn: str):
    assert "IMAGEN_DATABASE_URL" in repr(queue) and dsn not in repr(queue)
    assert "s3cret" not in repr(queue)


def test_a_queue_is_a_context_manager(make_queue):
    with make_queue() as queue:
        queue.init()
        queue.submit(FOX, backend="mock")
    assert queue._conn is None
