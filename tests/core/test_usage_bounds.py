"""`imagen usage` over the widest dates there are: the day after 9999-12-31
does not exist, so that `--until` means no end (it was an internal error)."""

from __future__ import annotations

import datetime as dt

import pytest

from imagen_core.cli import main
from imagen_core.usage import bounds


def test_until_the_last_day_has_no_end():
    start, end = bounds(dt.date.min, dt.date.max)
    assert start == dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc) and end is None
    assert bounds(None, dt.date(2026, 5, 1))[1] == dt.datetime(2026, 5, 2, tzinfo=dt.timezone.utc)


def test_usage_from_the_first_day_to_the_last(capsys, output_dir):
    with pytest.raises(SystemExit) as info:
        main(["generate", "a fox", "--size", "16x16"])
    assert info.value.code == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["usage", "--since", "0001-01-01", "--until", "9999-12-31"])
    out, err = capsys.readouterr()
    assert (info.value.code, err) == (0, "")
    assert "total: 1 image, 0 failed" in out
