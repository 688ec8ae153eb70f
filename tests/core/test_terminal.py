from __future__ import annotations

import io

from imagen_core.terminal import StepProgress, format_cost


def test_progress_draws_a_bar_and_clears_it():
    stream = io.StringIO()
    progress = StepProgress("flux", stream, width=8)
    progress(2, 8)
    progress(8, 8, "decoding")
    progress.close()
    frames = stream.getvalue().split("\r")
    assert "\x1b[Kflux [##......] 2/8" in frames
    assert "\x1b[Kflux [########] 8/8 decoding" in frames
    assert stream.getvalue().endswith("\r\x1b[K")


def test_progress_is_silent_without_a_terminal(capsys):
    progress = StepProgress.for_terminal("x")  # pytest's captured streams are not TTYs
    progress(1, 2)
    progress.close()
    assert progress.stream is None
    assert capsys.readouterr() == ("", "")


def test_progress_with_unknown_total():
    stream = io.StringIO()
    StepProgress("x", stream, width=4)(0, 0, "queued")
    assert stream.getvalue() == "\r\x1b[Kx [....] queued"


def test_cost_formatting():
    assert format_cost(None) == "cost unknown"
    assert format_cost(0.0) == "free"
    assert format_cost(0.003) == "$0.003"
    assert format_cost(0.04) == "$0.04"


def test_close_erases_once_and_drawing_resumes():
    stream = io.StringIO()
    progress = StepProgress("x", stream, width=2)
    progress(1, 2)
    progress.close()
    progress.close()  # nothing drawn since: nothing to erase
    progress(2, 2)
    assert stream.getvalue().count("\r\x1b[K") == 3  # two draws, one erase
