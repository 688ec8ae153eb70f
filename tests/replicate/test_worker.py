"""imagen worker with a Replicate backend: a job canceled while its prediction
runs has the prediction canceled on Replicate, so nobody pays for it."""

from __future__ import annotations

import threading
import time

from imagen_core import Request, Session
from imagen_core.worker import Worker, WorkerOptions


def test_a_job_canceled_while_it_runs_cancels_its_prediction(
    fake, fake_time, token, configure, output_dir
):
    configure(extra="timeout_s: 100000")
    fake.sync = "starting"
    fake.polls_to_finish = 10**9  # it would never finish on its own
    fake_time.on_sleep = lambda _n: time.sleep(0.005)  # polls at a real pace
    session = Session()
    queue = session.queue()
    job = queue.submit(Request("a cat", seed=1), backend="rep")
    lines: list[str] = []
    worker = Worker(
        session, queue, WorkerOptions(once=True, idle_wait_s=0.02, lease_s=0.3), log=lines.append
    )
    thread = threading.Thread(target=worker.run)
    thread.start()
    deadline = time.monotonic() + 10
    while not fake.predictions:
        assert time.monotonic() < deadline, "no prediction was created"
        time.sleep(0.02)

    queue.cancel(job.id)
    thread.join(timeout=20)
    assert not thread.is_alive()
    (pid,) = fake.predictions
    assert [c.path for c in fake.cancels] == [f"/v1/predictions/{pid}/cancel"]
    assert fake.predictions[pid].data["status"] == "canceled"
    assert queue.get(job.id).status == "canceled"
    assert len(lines) == 1 and " canceled " in lines[0]
    assert not list((output_dir / "jobs").glob("*"))
