"""The queue contract, as tests every queue type must pass.

A queue type's test module subclasses ``QueueContract`` and provides a fixture
``queue_factory``: a callable returning a new handle (its own connection) on one
shared, empty store, so that tests can play several workers."""

from __future__ import annotations

import threading
import time

import attrs
import pytest

from imagen_core import Request


class QueueContract:
    @pytest.fixture
    def queue(self, queue_factory):
        q = queue_factory()
        q.init()
        yield q
        q.close()

    def test_submit_and_get_keep_the_request(self, queue):
        request = Request(
            "a red fox",
            negative="blur",
            width=640,
            height=480,
            seed=7,
            steps=4,
            style=None,
            extra={"cfg": 3.5},
        )
        job = queue.submit(request, backend="flux", max_attempts=2)
        assert job.status == "queued" and job.attempts == 0 and job.max_attempts == 2
        again = queue.get(job.id)
        assert again.request.prompt == "a red fox" and again.request.extra == {"cfg": 3.5}
        assert (again.request.width, again.request.seed, again.request.negative) == (640, 7, "blur")
        assert again.backend == "flux" and again.request.backend == "flux"
        assert queue.get("no-such-id") is None

    def test_claim_oldest_first_and_filtered_by_backend(self, queue):
        a = queue.submit(Request("a"), backend="flux")
        b = queue.submit(Request("b"), backend="sd35")
        c = queue.submit(Request("c"), backend="flux")
        assert queue.claim("w1", backends=["sd35"], lease_s=60).id == b.id
        assert queue.claim("w1", backends=[], lease_s=60) is None
        first = queue.claim("w1", backends=None, lease_s=60)
        assert first.id == a.id and first.status == "running" and first.worker == "w1"
        assert first.attempts == 1
        assert queue.claim("w2", backends=["flux"], lease_s=60).id == c.id
        assert queue.claim("w2", backends=None, lease_s=60) is None

    @pytest.mark.parametrize("backends", [None, ["sdxl", "sd35"]])
    def test_a_job_whose_worker_died_keeps_its_place_in_queue_order(self, queue, backends):
        # Queue order is submission order, among queued jobs and jobs whose
        # worker died alike: an older queued job goes before the orphan, and
        # the orphan before a younger queued job.
        older = queue.submit(Request("older"), backend="sd35")
        orphan = queue.submit(Request("orphan"), backend="sdxl")
        # Its worker died: a lease that ran out a minute ago (no sleeping).
        assert queue.claim("dead", backends=["sdxl"], lease_s=-60).id == orphan.id
        younger = queue.submit(Request("younger"), backend="sd35")
        claimed = [queue.claim("w", backends=backends, lease_s=60) for _ in range(3)]
        assert [(job.id, job.attempts, job.worker) for job in claimed] == [
            (older.id, 1, "w"),
            (orphan.id, 2, "w"),
            (younger.id, 1, "w"),
        ]
        assert queue.claim("w", backends=backends, lease_s=60) is None

    # ------------------------------------------------------------ model affinity

    def test_affinity_prefers_the_backend_claimed_last(self, queue):
        b1 = queue.submit(Request("b1"), backend="sd35")
        a1 = queue.submit(Request("a1"), backend="flux")
        b2 = queue.submit(Request("b2"), backend="sd35")
        a2 = queue.submit(Request("a2"), backend="flux")

        def claim(prefer):
            return queue.claim("w", backends=None, lease_s=60, prefer=prefer, pass_over_s=600)

        # Every job was submitted well within the bound of the oldest: the
        # preferred backend's jobs go first, oldest first among them.
        assert [claim("flux").id, claim("flux").id] == [a1.id, a2.id]
        assert claim("flux").id == b1.id  # none of flux left: the oldest
        assert claim("sd35").id == b2.id
        assert claim("sd35") is None

    def test_affinity_takes_a_job_passed_over_longer_than_the_bound(self, queue):
        old = queue.submit(Request("old"), backend="sd35")
        time.sleep(0.3)
        late = queue.submit(Request("late"), backend="flux")
        # ``late`` came 0.3 s after ``old``: more than a 0.1 s bound lets pass.
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=0.1).id == (
            old.id
        )
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=0.1).id == (
            late.id
        )
        # The same pair with a bound longer than the gap: the preference holds.
        old = queue.submit(Request("old"), backend="sd35")
        time.sleep(0.3)
        late = queue.submit(Request("late"), backend="flux")
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=600).id == (
            late.id
        )

    def test_affinity_bound_0_or_no_preference_is_oldest_first(self, queue):
        b = queue.submit(Request("b"), backend="sd35")
        a = queue.submit(Request("a"), backend="flux")
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=0).id == b.id
        queue.release(b.id, "w")
        assert queue.claim("w", backends=None, lease_s=60, prefer=None, pass_over_s=600).id == b.id
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=0).id == a.id

    def test_affinity_never_passes_over_a_job_whose_worker_died(self, queue):
        older = queue.submit(Request("older"), backend="sd35")
        orphan = queue.submit(Request("orphan"), backend="sdxl")
        assert queue.claim("dead", backends=["sdxl"], lease_s=0.2).id == orphan.id
        preferred = queue.submit(Request("preferred"), backend="flux")
        time.sleep(0.3)
        # The orphan (its lease ran out) before the preferred job and the older one.
        again = queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=600)
        assert (again.id, again.attempts) == (orphan.id, 2)
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=600).id == (
            preferred.id
        )
        assert queue.claim("w", backends=None, lease_s=60, prefer="flux", pass_over_s=600).id == (
            older.id
        )

    @pytest.mark.parametrize("backends", [None, ["flux", "sdxl", "sd35", "sd15"]])
    def test_affinity_takes_a_job_whose_worker_died_in_queue_order(self, queue, backends):
        older = queue.submit(Request("older"), backend="sd35")
        first = queue.submit(Request("first"), backend="flux")
        orphan = queue.submit(Request("orphan"), backend="sdxl")
        # Its worker died: a lease that ran out a minute ago (no sleeping).
        assert queue.claim("dead", backends=["sdxl"], lease_s=-60).id == orphan.id
        second = queue.submit(Request("second"), backend="flux")

        def claim(prefer):
            return queue.claim("w", backends=backends, lease_s=60, prefer=prefer, pass_over_s=600)

        # No job of the preferred backend: queue order, the older queued job
        # before the orphan.
        assert claim("sd15").id == older.id
        # A preferred job older than the orphan goes first; a younger one never
        # passes over it.
        assert [claim("flux").id, claim("flux").id, claim("flux").id] == [
            first.id,
            orphan.id,
            second.id,
        ]
        assert claim("flux") is None

    def test_affinity_keeps_the_backends_filter(self, queue):
        other = queue.submit(Request("other"), backend="sdxl")
        b = queue.submit(Request("b"), backend="sd35")
        a = queue.submit(Request("a"), backend="flux")

        def claim(backends):
            return queue.claim("w", backends=backends, lease_s=60, prefer="flux", pass_over_s=600)

        assert claim(["sd35"]).id == b.id  # flux is not served: no preference
        assert claim(["sd35"]) is None
        assert claim([]) is None
        assert claim(["flux", "sd35"]).id == a.id
        assert claim(["flux", "sd35"]) is None  # sdxl is not served, however old
        assert claim(None).id == other.id

    def test_affinity_claims_never_collide(self, queue, queue_factory):
        ids = {
            queue.submit(Request(f"p{i}"), backend=("flux", "sd35")[i % 2]).id for i in range(60)
        }
        claimed: list[str] = []
        lock = threading.Lock()

        def worker(name: str, prefer: str) -> None:
            handle = queue_factory()
            try:
                while (
                    job := handle.claim(
                        name, backends=None, lease_s=60, prefer=prefer, pass_over_s=600
                    )
                ) is not None:
                    with lock:
                        claimed.append(job.id)
            finally:
                handle.close()

        threads = [
            threading.Thread(target=worker, args=(f"w{i}", ("flux", "sd35")[i % 2]))
            for i in range(4)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(claimed) == sorted(ids)

    def test_no_job_is_claimed_twice_under_concurrency(self, queue, queue_factory):
        ids = {queue.submit(Request(f"p{i}"), backend="mock").id for i in range(60)}
        claimed: list[str] = []
        lock = threading.Lock()

        def worker(name: str) -> None:
            handle = queue_factory()
            try:
                while (job := handle.claim(name, backends=None, lease_s=60)) is not None:
                    with lock:
                        claimed.append(job.id)
            finally:
                handle.close()

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert sorted(claimed) == sorted(ids)

    def test_an_expired_lease_is_claimed_again_and_the_old_owner_is_told(self, queue):
        job = queue.submit(Request("x"), backend="mock")
        queue.claim("dead", backends=None, lease_s=0.2)
        assert queue.claim("other", backends=None, lease_s=60) is None  # lease still valid
        time.sleep(0.3)
        again = queue.claim("other", backends=None, lease_s=60)
        assert again.id == job.id and again.attempts == 2 and again.worker == "other"
        assert queue.heartbeat(job.id, "dead", lease_s=60) is False
        assert queue.complete(job.id, "dead", result_path="/x.png", metadata={}) is False
        assert queue.fail(job.id, "dead", error="x") is False
        assert queue.release(job.id, "dead") is False
        assert queue.heartbeat(job.id, "other", lease_s=60) is True
        assert queue.complete(job.id, "other", result_path="/y.png", metadata={"seed": 3}) is True
        done = queue.get(job.id)
        assert (done.status, done.result_path, done.metadata) == ("done", "/y.png", {"seed": 3})

    def test_fail_requeues_until_max_attempts(self, queue):
        job = queue.submit(Request("x"), backend="mock", max_attempts=2)
        queue.claim("w", backends=None, lease_s=60)
        assert queue.fail(job.id, "w", error="GPU busy") is True
        assert queue.get(job.id).status == "queued"
        queue.claim("w", backends=None, lease_s=60)
        queue.fail(job.id, "w", error="GPU on fire")
        final = queue.get(job.id)
        assert (final.status, final.attempts, final.error) == ("failed", 2, "GPU on fire")
        assert queue.claim("w", backends=None, lease_s=60) is None

    def test_a_job_whose_worker_dies_on_every_attempt_fails(self, queue):
        poison = queue.submit(Request("brings workers down"), backend="mock", max_attempts=2)
        for dead in ("dead1", "dead2"):
            claimed = queue.claim(dead, backends=None, lease_s=0.1)
            assert claimed.id == poison.id  # the first death is retried
            time.sleep(0.15)
        healthy = queue.submit(Request("fine"), backend="mock")
        # The claim that finds the exhausted lease fails that job and moves on.
        assert queue.claim("w3", backends=None, lease_s=60).id == healthy.id
        failed = queue.get(poison.id)
        assert (failed.status, failed.attempts) == ("failed", 2)
        assert "worker stopped" in failed.error and "each of its 2 attempts" in failed.error
        assert queue.claim("w3", backends=None, lease_s=60) is None
        assert queue.complete(poison.id, "dead2", result_path="/x", metadata={}) is False

    def test_release_gives_the_job_back_without_counting_the_attempt(self, queue):
        job = queue.submit(Request("x"), backend="mock")
        queue.claim("w", backends=None, lease_s=60)
        assert queue.release(job.id, "w") is True
        back = queue.get(job.id)
        assert (back.status, back.attempts, back.worker) == ("queued", 0, None)

    def test_cancel_queued_and_running(self, queue):
        queued = queue.submit(Request("a"), backend="mock")
        running = queue.submit(Request("b"), backend="mock")
        assert queue.cancel(queued.id).status == "canceled"
        claimed = queue.claim("w", backends=None, lease_s=60)
        assert claimed.id == running.id
        assert queue.cancel(running.id).status == "canceled"
        assert queue.heartbeat(running.id, "w", lease_s=60) is False
        assert queue.complete(running.id, "w", result_path="/x", metadata={}) is False
        assert queue.claim("w", backends=None, lease_s=60) is None
        assert queue.cancel("nope") is None

    def test_list_newest_first_with_status_filter(self, queue):
        jobs = [queue.submit(Request(f"p{i}"), backend="mock") for i in range(3)]
        time.sleep(0.01)
        queue.claim("w", backends=None, lease_s=60)
        assert [j.id for j in queue.list()] == [j.id for j in reversed(jobs)]
        assert [j.id for j in queue.list(status="running")] == [jobs[0].id]
        assert len(queue.list(limit=2)) == 2

    def test_init_is_idempotent_and_wait_returns(self, queue):
        queue.init()
        queue.init()
        start = time.monotonic()
        queue.wait(0.2)
        assert time.monotonic() - start < 5

    def test_fail_without_retry_fails_at_once(self, queue):
        job = queue.submit(Request("x"), backend="mock", max_attempts=3)
        queue.claim("w1", backends=None, lease_s=60)
        assert queue.fail(job.id, "w1", error="HTTP 400: bad prompt", retry=False)
        failed = queue.get(job.id)
        assert (failed.status, failed.attempts, failed.error) == (
            "failed",
            1,
            "HTTP 400: bad prompt",
        )
        assert queue.claim("w1", backends=None, lease_s=60) is None

    def test_match_finds_ids_by_their_start(self, queue):
        jobs = [queue.submit(Request(f"p{i}"), backend="mock") for i in range(40)]
        target = jobs[7].id
        assert queue.match(target[:8], limit=5) == [target]
        assert queue.match(target, limit=5) == [target]
        assert queue.match("zz", limit=5) == []
        # Forty random ids: some first hex digit is shared by two or more.
        by_first: dict[str, list[str]] = {}
        for job in jobs:
            by_first.setdefault(job.id[0], []).append(job.id)
        shared = max(by_first.values(), key=len)
        assert sorted(queue.match(shared[0][0], limit=50)) == sorted(shared)
        assert len(queue.match(shared[0][0], limit=1)) == 1

    def test_find_job_takes_a_unique_prefix_and_names_the_ambiguous(self, queue):
        from imagen_core.errors import UsageError
        from imagen_core.queue import AmbiguousJobId, find_job

        jobs = [queue.submit(Request(f"p{i}"), backend="mock") for i in range(40)]
        one = jobs[3]
        assert find_job(queue, one.id).id == one.id
        assert find_job(queue, one.id[:12]).id == one.id
        assert find_job(queue, one.id[:12].upper()).id == one.id
        assert find_job(queue, "ffffffff-no") is None
        # Forty ids, sixteen hex digits: some first digit is shared.
        shared = max(
            ([j.id for j in jobs if j.id[0] == digit] for digit in "0123456789abcdef"), key=len
        )
        with pytest.raises(AmbiguousJobId) as info:
            find_job(queue, shared[0][0])
        assert isinstance(info.value, UsageError)
        assert all(job_id in str(info.value) for job_id in shared[:10])

    # ------------------------------------------------------------ input images

    def test_inputs_travel_with_the_job_as_hashes(self, queue):
        image, reference, mask = inputs()
        request = Request("edit", inputs=[image, reference, mask], strength=0.4)
        job = queue.submit(request, backend="mock")
        refs = [(i.sha256, i.role, i.source) for i in (image, reference, mask)]
        for seen in (job, queue.get(job.id), queue.list()[0]):
            assert [(r.sha256, r.role, r.source) for r in seen.inputs] == refs
            assert seen.request.inputs == () and seen.request.strength == 0.4
            assert seen.as_dict()["inputs"][0] == {
                "sha256": image.sha256,
                "role": "image",
                "source": "/photos/cat.png",
            }
        claimed = queue.claim("w", backends=None, lease_s=60)
        assert [(i.data, i.role, i.source) for i in claimed.request.inputs] == [
            (i.data, i.role, i.source) for i in (image, reference, mask)
        ]
        assert claimed.request.strength == 0.4
        assert queue.input_bytes(image.sha256) == image.data
        assert queue.input_bytes("0" * 64) is None

    def test_an_input_lives_while_a_job_needs_it(self, queue):
        image, _, _ = inputs()
        a = queue.submit(Request("a", inputs=[image]), backend="mock")
        b = queue.submit(Request("b", inputs=[image]), backend="mock", max_attempts=2)
        assert queue.claim("w", backends=None, lease_s=60).id == a.id
        assert queue.complete(a.id, "w", result_path="/a.png", metadata={})
        assert queue.input_bytes(image.sha256) == image.data  # b still needs it
        assert queue.claim("w", backends=None, lease_s=60).id == b.id
        assert queue.fail(b.id, "w", error="busy")  # queued again: still needed
        assert queue.input_bytes(image.sha256) == image.data
        assert queue.claim("w", backends=None, lease_s=60).request.inputs[0].data == image.data
        assert queue.fail(b.id, "w", error="busy again")  # failed for good
        assert queue.input_bytes(image.sha256) is None

    def test_a_canceled_job_leaves_no_input_behind(self, queue):
        image, reference, _ = inputs()
        job = queue.submit(Request("a", inputs=[image, reference]), backend="mock")
        queue.cancel(job.id)
        assert (
            queue.input_bytes(image.sha256) is None and queue.input_bytes(reference.sha256) is None
        )
        assert queue.get(job.id).inputs[1].sha256 == reference.sha256  # the record stays

    def test_a_job_whose_worker_died_finds_its_inputs_again(self, queue):
        image, _, _ = inputs()
        job = queue.submit(Request("a", inputs=[image]), backend="mock")
        queue.claim("dead", backends=None, lease_s=0.1)
        time.sleep(0.15)
        again = queue.claim("w", backends=None, lease_s=60)
        assert again.id == job.id and again.request.inputs[0].data == image.data

    def test_the_inputs_of_a_job_failed_by_dead_workers_go_too(self, queue):
        image, _, _ = inputs()
        poison = queue.submit(Request("a", inputs=[image]), backend="mock", max_attempts=1)
        queue.claim("dead", backends=None, lease_s=0.1)
        time.sleep(0.15)
        assert queue.claim("w", backends=None, lease_s=60) is None
        assert queue.get(poison.id).status == "failed"
        self.collect(queue)
        assert queue.input_bytes(image.sha256) is None

    def collect(self, queue) -> None:
        """What the queue type does to delete images of jobs failed by a claim
        (nothing for a queue that deletes them at once)."""

    @pytest.mark.slow
    def test_a_worker_killed_mid_job_is_rerun_with_its_inputs(
        self, queue, queue_block, isolated_env, tmp_path
    ):
        import os
        import signal
        import subprocess
        import sys

        from PIL import Image

        from imagen_core import Session
        from imagen_core.worker import Worker, WorkerOptions
        from tests.helpers import write_config

        image, _, _ = inputs()
        job = queue.submit(
            Request("edit", width=8, height=8, inputs=[image], strength=0.0), backend="mock"
        )
        slow = tmp_path / "slow.yaml"
        slow.write_text(f"{queue_block}\nbackends:\n  mock: {{type: mock, latency_s: 600}}\n")
        env = {
            **os.environ,
            "IMAGEN_CONFIG": str(slow),
            "IMAGEN_LOAD_PLUGINS": "imagen-mock,imagen-postgres",
        }
        code = "from imagen_core.cli import main; main(['worker', '--lease', '1'])"
        proc = subprocess.Popen(
            [sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 60
            while queue.get(job.id).status != "running":
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stderr.close()
        write_config(isolated_env, "backends:\n  mock: {type: mock}\n")
        session = Session()
        deadline = time.monotonic() + 60
        while queue.get(job.id).status != "done":  # once the dead worker's lease runs out
            assert time.monotonic() < deadline, queue.get(job.id)
            options = WorkerOptions(once=True, idle_wait_s=0.05, lease_s=30)
            Worker(session, queue, options, log=lambda _line: None).run()
            time.sleep(0.1)
        done = queue.get(job.id)
        assert done.attempts == 2
        with Image.open(done.result_path) as made:  # strength 0: the input, untouched
            assert made.convert("RGB").getcolors() == [(64, (250, 40, 10))]
        assert queue.input_bytes(image.sha256) is None


def inputs():
    """An image, a reference and a mask, as a person would give them."""
    import io

    from PIL import Image

    from imagen_core import ImageInput

    def png(color, mode="RGB") -> bytes:
        buffer = io.BytesIO()
        Image.new(mode, (8, 8), color).save(buffer, "PNG")
        return buffer.getvalue()

    return (
        attrs.evolve(ImageInput.from_bytes(png((250, 40, 10))), source="/photos/cat.png"),
        ImageInput.from_bytes(png((0, 0, 255)), role="reference"),
        ImageInput.from_bytes(png(255, "L"), role="mask", source="/photos/mask.png"),
    )
