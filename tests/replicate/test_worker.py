"""imagen worker with a Replicate backend: a job canceled while its prediction
runs has the prediction canceled on Replicate, so nobody pays for it; a job
whose prediction failed before it ever ran (not charged) goes back to the queue
and is done on its next attempt; a job Replicate refuses (a 422) fails on its
first attempt and is never sent again."""

from __future__ import annotations

import time

from imagen_core import Request, Session
from tests.helpers import cancel_while_running, job_files, requeued_then_done


def test_a_job_canceled_while_it_runs_cancels_its_prediction(
    fake, fake_time, token, configure, output_dir
):
    configure(extra="timeout_s: 100000")
    fake.sync = "starting"
    fake.polls_to_finish = 10**9  # it would never finish on its own
    fake_time.on_sleep = lambda _n: time.sleep(0.005)  # polls at a real pace
    job, lines = cancel_while_running(
        Session(), "rep", lambda: fake.predictions, "no prediction was created"
    )
    (pid,) = fake.predictions
    assert [c.path for c in fake.cancels] == [f"/v1/predictions/{pid}/cancel"]
    assert fake.predictions[pid].data["status"] == "canceled"
    assert job.status == "canceled"
    assert len(lines) == 1 and " canceled " in lines[0]
    assert job_files(output_dir) == []


def test_a_job_whose_prediction_never_ran_is_requeued_and_done_a_422_job_fails_once(
    fake, fake_time, token, configure, output_dir
):
    configure()
    # The first prediction created fails before it starts (Replicate's E6716: no
    # machine in time), so nothing was billed; the next one succeeds.
    fake.next_predictions = [("failed", "E6716: Timeout starting prediction", True)]
    dog = Request("a dog", seed=2, steps=8)  # schnell takes at most 4 steps
    retrying, error = requeued_then_done(Session(), "rep", dog, output_dir)
    assert "input.num_inference_steps: Must be less than or equal to 4 (HTTP 422)" in error
    assert "E6716: Timeout starting prediction" in retrying
    # Three creates: the busy job twice, the refused one once; two predictions exist.
    prompts = sorted(r.json["input"]["prompt"] for r in fake.creates)
    assert prompts == ["a cat", "a cat", "a dog"] and len(fake.predictions) == 2
