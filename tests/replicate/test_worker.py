"""imagen worker with a Replicate backend: a job canceled while its prediction
runs has the prediction canceled on Replicate, so nobody pays for it."""

from __future__ import annotations

import time

from imagen_core import Session
from tests.helpers import cancel_while_running


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
    assert not list((output_dir / "jobs").glob("*"))
