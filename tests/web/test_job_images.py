"""The worker's images in the gallery: by submit hour (and the flat jobs/ folder
before it), each found right after it is written, with its job id."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import time

from imagen_core import Request
from imagen_core.worker import Worker, WorkerOptions
from imagen_web.images_index import ImagesIndex
from tests.helpers import job_image


def run_worker(session, queue):
    Worker(session, queue, WorkerOptions(once=True, idle_wait_s=0.02), log=lambda line: None).run()


def age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_a_job_image_is_in_the_gallery_right_after_it_is_written(session, output_dir, tmp_path):
    # An image an older worker wrote to the flat folder, long ago.
    flat = output_dir / "jobs"
    flat.mkdir(parents=True)
    old_id = "0badc0de-0000-4000-8000-000000000000"
    (flat / f"{old_id}.png").write_bytes(b"\x89PNG")
    sidecar = {"created": "2026-01-01T00:00:00+00:00", "image": f"{old_id}.png", "prompt": "old"}
    (flat / f"{old_id}.json").write_text(json.dumps(sidecar))
    for folder in (flat, output_dir):
        age(folder, 3 * 86400)
    index = ImagesIndex(output_dir, catalog=tmp_path / "gallery.db", sweep_s=3600)
    index.refresh()  # the sweep at start; every refresh below is between sweeps
    assert index.get(f"jobs/{old_id}.png")["job"] == old_id

    queue = session.queue()
    for n in range(3):
        job = queue.submit(Request(f"fox {n}", width=8, height=8), backend="mock")
        run_worker(session, queue)
        image = job_image(output_dir, job.id, job.created_at)
        index.refresh()
        [newest], _ = index.page(None, 1)
        assert newest["prompt"] == f"fox {n}" and newest["job"] == job.id
        assert newest["id"] == image.relative_to(output_dir).as_posix()
    assert len(index) == 4 and index.get(f"jobs/{old_id}.png") is not None


def test_a_job_submitted_long_ago_shows_by_the_next_sweep(session, output_dir, tmp_path):
    """Its submit hour's folder is a day old: not looked at between sweeps."""
    queue = session.queue()
    early = queue.submit(Request("early", width=8, height=8), backend="mock")
    late = queue.submit(Request("late", width=8, height=8), backend="mock")
    submitted = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)
    with sqlite3.connect(queue.path) as db:
        db.execute(
            "UPDATE jobs SET created_at = ? WHERE id IN (?, ?)",
            (submitted.isoformat(timespec="milliseconds"), early.id, late.id),
        )
    db.close()
    Worker(
        session, queue, WorkerOptions(once=True, max_jobs=1), log=lambda line: None
    ).run()  # the early one, three days ago
    hour = job_image(output_dir, early.id, submitted).parent
    for folder in (hour, hour.parent, output_dir / "jobs", output_dir):
        age(folder, 3 * 86400)
    index = ImagesIndex(output_dir, catalog=tmp_path / "gallery.db", sweep_s=3600)
    index.refresh()
    assert [e["prompt"] for e in index.page(None, 10)[0]] == ["early"]
    run_worker(session, queue)
    assert job_image(output_dir, late.id, submitted).is_file()
    index.refresh()
    assert [e["prompt"] for e in index.page(None, 10)[0]] == ["early"]
    index._swept_ns = 0  # the sweep is due
    index.refresh()
    assert sorted(e["job"] for e in index.page(None, 10)[0]) == sorted([early.id, late.id])


def test_between_sweeps_only_recent_folders_are_stat_ed(output_dir, tmp_path, monkeypatch):
    """A year of submit-hour folders: a request looks at the few that changed
    in the last day, not at every one (and still sees what lands in them)."""
    jobs = output_dir / "jobs"
    now = dt.datetime.now(dt.timezone.utc)
    hours = [now - dt.timedelta(hours=h) for h in range(0, 24 * 20, 5)]
    for moment in hours:
        folder = jobs / f"{moment:%Y-%m-%d}" / f"{moment:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{moment:%d%H}-job"
        (folder / f"{name}.png").write_bytes(b"\x89PNG")
        body = {"created": moment.isoformat(), "image": f"{name}.png", "prompt": name}
        (folder / f"{name}.json").write_text(json.dumps(body))
    for moment in reversed(hours):  # each folder last changed when its job came
        for folder in (jobs / f"{moment:%Y-%m-%d}" / f"{moment:%H}", jobs / f"{moment:%Y-%m-%d}"):
            stamp = moment.timestamp() - 5
            os.utime(folder, (stamp, stamp))
    for folder in (jobs, output_dir):
        age(folder, 10)
    index = ImagesIndex(output_dir, catalog=tmp_path / "gallery.db", sweep_s=3600)
    index.refresh()
    assert len(index) == len(hours)

    seen: list[str] = []
    real = os.lstat
    root = os.fspath(output_dir)

    def lstat(path, *args, **kwargs):
        text = os.fspath(path)
        if text == root or text.startswith(f"{root}/"):
            seen.append(text[len(root) + 1 :])
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    index.refresh()
    recent = {
        f"jobs/{m:%Y-%m-%d}/{m:%H}" for m in hours if now - m < dt.timedelta(hours=23, minutes=50)
    }
    assert recent <= set(seen)
    assert len(seen) <= len(recent) + 2 + 3  # the root, jobs/, the day folders of the last day
    assert len(seen) < len(hours) // 4

    newest = hours[0]
    folder = jobs / f"{newest:%Y-%m-%d}" / f"{newest:%H}"
    (folder / "fresh.png").write_bytes(b"\x89PNG")
    body = {"created": (now + dt.timedelta(seconds=1)).isoformat(), "image": "fresh.png"}
    (folder / "fresh.json").write_text(json.dumps({**body, "prompt": "fresh"}))
    index.refresh()
    [first], _ = index.page(None, 1)
    assert first["prompt"] == "fresh" and first["job"] == "fresh"
