"""Many workers at once: each job is claimed exactly once, by threads with their
own connections, by threads sharing one queue, and by processes."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter

from imagen_core.models import Request

JOBS = 200
WORKERS = 8


def fill(queue, n: int = JOBS) -> set[str]:
    return {queue.submit(Request(f"job {i}"), backend="mock").id for i in range(n)}


def drain(queue, name: str, into: list[str], start: threading.Barrier | None = None) -> None:
    if start is not None:
        start.wait()
    while (job := queue.claim(name, backends=None, lease_s=60)) is not None:
        into.append(job.id)
        assert queue.complete(job.id, name, result_path=f"/{job.id}.png", metadata={})


def run_threads(target, count: int) -> None:
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()


def test_eight_workers_with_their_own_connections_claim_each_job_once(queue, make_queue):
    ids = fill(queue)
    workers = [make_queue() for _ in range(WORKERS)]
    claimed: list[list[str]] = [[] for _ in range(WORKERS)]
    start = threading.Barrier(WORKERS)
    run_threads(lambda n: drain(workers[n], f"w{n}", claimed[n], start), WORKERS)
    every = [job for mine in claimed for job in mine]
    assert Counter(every).most_common(1)[0][1] == 1  # nobody got a job twice
    assert set(every) == ids
    assert sum(1 for mine in claimed if mine) > 1  # they really did share the work
    assert {job.status for job in queue.list(limit=JOBS)} == {"done"}


def test_threads_sharing_one_queue_claim_each_job_once(queue):
    ids = fill(queue, 100)
    claimed: list[str] = []
    start = threading.Barrier(4)
    run_threads(lambda n: drain(queue, f"t{n}", claimed, start), 4)
    assert sorted(claimed) == sorted(ids)


def _process_worker(schema: str, name: str, out) -> None:  # runs in a child process
    from imagen_postgres.queue import PostgresQueue
    from imagen_postgres.settings import PostgresQueueConfig

    queue = PostgresQueue(PostgresQueueConfig(schema=schema))
    claimed: list[str] = []
    drain(queue, name, claimed)
    queue.close()
    out.put(claimed)


def test_worker_processes_claim_each_job_once(queue, schema):
    ids = fill(queue)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    processes = [
        context.Process(target=_process_worker, args=(schema, f"p{n}", out)) for n in range(4)
    ]
    for process in processes:
        process.start()
    every = [job for _ in processes for job in out.get(timeout=60)]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert len(every) == len(set(every)) == JOBS and set(every) == ids


def _use_inherited(queue, out) -> None:  # runs in a forked child
    job = queue.claim("child", backends=None, lease_s=60)
    out.put(job.id if job else None)


def test_a_forked_child_never_uses_its_parents_connection(queue):
    first = queue.submit(Request("for the child"), backend="mock")
    second = queue.submit(Request("for the parent"), backend="mock")
    parent_pid = queue._conn.info.backend_pid
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_use_inherited, args=(queue, out))
    child.start()
    assert out.get(timeout=30) == first.id
    child.join(timeout=30)
    # The parent's session survived the child (which opened and closed its own).
    assert queue._conn.info.backend_pid == parent_pid
    assert queue.claim("parent", backends=None, lease_s=60).id == second.id


def test_concurrent_inits_do_not_collide(make_queue):
    queues = [make_queue() for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(queues))

    def init(n: int) -> None:
        start.wait()
        try:
            queues[n].init()
        except BaseException as exc:  # reported below, with the thread's exception
            errors.append(exc)

    run_threads(init, len(queues))
    assert errors == []
    assert queues[0].list() == []
