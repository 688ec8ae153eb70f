"""imagen worker with a fal backend: a job whose run fal could not serve (a 503)
goes back to the queue and is done on its next attempt; a job fal refuses (a
422) fails on its first attempt and is never sent again."""

from __future__ import annotations

from imagen_core import Request, Session
from tests.helpers import requeued_then_done


def test_a_503_job_is_requeued_and_done_a_422_job_fails_once(
    fake, fake_time, key, configure, output_dir
):
    configure()
    # fal's queue ran the first request and no runner could be had, after fal's
    # own retries: COMPLETED with an error, its result a 503 (not billed).
    fake.runner_error = "No runner could be allocated to handle the request."
    fake.runner_error_type = "runner_scheduling_failure"
    fake.runner_error_runs = 1
    dog = Request("a dog", seed=2, steps=40)  # schnell takes at most 12 steps
    retrying, error = requeued_then_done(Session(), "fal1", dog, output_dir)
    assert "num_inference_steps: Input should be less than or equal to 12 (HTTP 422)" in error
    assert "(runner_scheduling_failure): No runner could be allocated" in retrying
    # Three requests on fal: the busy job twice, the refused one once.
    assert sorted(r.json["prompt"] for r in fake.submits) == ["a cat", "a cat", "a dog"]
