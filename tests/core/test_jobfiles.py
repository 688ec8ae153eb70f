"""Where the worker puts a job's image: the layout by submit hour (UTC)."""

from __future__ import annotations

import datetime as dt

import pytest

from imagen_core.jobfiles import job_of, job_output, submit_hour


def test_the_submit_hour_is_in_utc_whatever_the_zone_of_the_time():
    utc = dt.datetime(2026, 11, 27, 23, 59, 59, tzinfo=dt.timezone.utc)
    east = utc.astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert submit_hour(utc) == submit_hour(east) == "2026-11-27/23"
    assert submit_hour(utc.replace(tzinfo=None)) == "2026-11-27/23"  # naive: taken as UTC


def test_job_output(tmp_path):
    moment = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    assert job_output(tmp_path, "abc", moment) == tmp_path / "jobs" / "2026-01-02" / "03" / "abc"


@pytest.mark.parametrize(
    ("folder", "image", "job"),
    [
        ("jobs/2026-11-28/14", "3f0c.png", "3f0c"),
        ("jobs", "3f0c.webp", "3f0c"),  # the flat layout before
        ("2026-11-28", "3f0c.png", None),  # imagen generate's date folder
        ("jobs/2026-11-28", "3f0c.png", None),
        ("jobs/2026-11-28/14/x", "3f0c.png", None),
        ("jobs/whatever/14", "3f0c.png", None),
        ("other/jobs/2026-11-28/14", "3f0c.png", None),
        ("", "3f0c.png", None),
    ],
)
def test_job_of(folder, image, job):
    assert job_of(folder, image) == job


def test_leftovers_are_only_this_job_s_files(tmp_path):
    """A sidecar left in the folder names what to remove only when that is an
    image of the same job: never another job's file, nothing outside the folder."""
    import json

    from imagen_core.jobfiles import remove_leftovers

    moment = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)
    folder = job_output(tmp_path, "job", moment).parent
    folder.mkdir(parents=True)
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"x")
    keep = [folder / "other.png", folder / "jobber.png", folder / "job-2.png", outside]
    for path in keep:
        path.write_bytes(b"x")
    (folder / "job.json").write_text(json.dumps({"image": "other.png"}))
    (folder / "job-1.json").write_text(json.dumps({"image": "../../../../outside.png"}))
    remove_leftovers(tmp_path, "job", moment)
    assert sorted(folder.iterdir()) == sorted(keep[:3])
    assert outside.exists()

    (folder / "job.json").symlink_to(outside)  # never followed, but in the way: removed
    (folder / "job.png").write_bytes(b"x")
    remove_leftovers(tmp_path, "job", moment)
    assert not (folder / "job.json").is_symlink() and not (folder / "job.png").exists()
    assert outside.exists()


def test_no_folder_no_leftovers(tmp_path):
    from imagen_core.jobfiles import remove_leftovers

    remove_leftovers(tmp_path / "nowhere", "job", dt.datetime.now(dt.timezone.utc))
    assert not (tmp_path / "nowhere").exists()
