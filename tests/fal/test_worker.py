"""imagen worker with a fal backend: a job whose run fal could not serve (a 503)
goes back to the queue and is done on its next attempt; a job fal refuses (a
422) fails on its first attempt and is never sent again."""

from __future__ import annotations

from imagen_core import Request, Session
from tests.helpers import run_worker_once


def test_a_503_job_is_requeued_and_done_a_422_job_fails_once(
    fake, fake_time, key, configure, output_dir
):
    configure()
    # fal's queue ran the first request and no runner could be had, after fal's
    # own retries: COMPLETED with an error, its result a 503 (not billed).
    fake.runner_error = "No runner could be allocated to handle the request."
    fake.runner_error_type = "runner_scheduling_failure"
    fake.runner_error_runs = 1
    session = Session()
    queue = session.queue()
    busy = queue.submit(Request("a cat", seed=1), backend="fal1")
    refused = queue.submit(Request("a dog", seed=2, steps=40), backend="fal1")  # schnell: <= 12

    lines = run_worker_once(session)

    busy_job, refused_job = queue.get(busy.id), queue.get(refused.id)
    assert busy_job.status == "done" and busy_job.attempts == 2
    assert refused_job.status == "failed" and refused_job.attempts == 1
    assert "num_inference_steps: Input should be less than or equal to 12 (HTTP 422)" in (
        refused_job.error or ""
    )
    # Three requests on fal: the busy job twice, the refused one once.
    prompts = [r.json["prompt"] for r in fake.submits]
    assert sorted(prompts) == ["a cat", "a cat", "a dog"]
    statuses = [line.split()[3] for line in lines]  # job ID BACKEND STATUS ...
    assert sorted(statuses) == ["done", "failed", "retrying"]
    retrying = next(line for line in lines if " retrying " in line)
    assert f"job {busy.id[:8]} fal1 retrying (1/3)" in retrying
    assert "(runner_scheduling_failure): No runner could be allocated" in retrying
    assert busy_job.result_path is not None and (output_dir / busy_job.result_path).exists()
