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
