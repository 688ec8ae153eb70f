"""Never lose an image, never leave litter: failed writes, the rescue, over-long
names, and what a SIGKILL at the worst moment leaves behind."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from imagen_core import OutputError, Request, generate
from imagen_core.ledger import default_path
from tests.helpers import run_cli, write_config


def ledger_rows() -> list[dict]:
    db = sqlite3.connect(default_path())
    db.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in db.execute("SELECT * FROM usage ORDER BY id")]
    finally:
        db.close()


def test_when_the_write_and_the_rescue_both_fail_both_are_named_and_recorded(
    isolated_env, tmp_path, monkeypatch
):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    real_link = os.link

    def link(src, dst):
        if "imagen-rescued" in str(dst):
            raise OSError(28, "No space left on device")
        if not str(dst).endswith(".json"):
            raise OSError(122, "Disk quota exceeded")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    with pytest.raises(OutputError) as info:
        generate(Request("paid for", width=8, height=8), output=tmp_path / "out" / "x.png")
    message = str(info.value)
    assert f"cannot write {tmp_path / 'out' / 'x.png'}: Disk quota exceeded" in message
    assert "rescue folder failed too" in message and "No space left on device" in message
    assert message.endswith("the image is lost")
    (row,) = ledger_rows()
    assert row["status"] == "failed" and row["error"] == message
    assert row["cost_usd"] == 0.0  # the generation happened: its cost is counted
    assert not list((tmp_path / "out").iterdir())  # no sidecar without its image


def test_the_rescue_name_is_short_and_safe_whatever_the_target(isolated_env, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    real_link = os.link

    def link(src, dst):
        if "imagen-rescued" not in str(dst):
            raise OSError(28, "No space left on device")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", link)
    long_name = "é" * 120 + ".png"  # 241 bytes: legal, but not a rescue name
    with pytest.raises(OutputError, match="the image was saved to"):
        generate(Request("x", width=8, height=8), output=tmp_path / long_name)
    (rescued,) = (tmp_path / "tmp" / "imagen-rescued").iterdir()
    assert len(rescued.name) < 40 and rescued.suffix == ".png"
    assert rescued.name.isascii()
    (row,) = ledger_rows()
    assert row["status"] == "failed" and str(rescued) in row["error"]


def test_config_validate_catches_a_template_making_over_long_names(isolated_env, capsys):
    write_config(isolated_env, "output:\n  naming: '{date}/" + "{slug}-" * 7 + "{seed}.{ext}'\n")
    code, _out, err = run_cli(capsys, "config", "validate")
    assert code == 1  # validate's "problems found"; other commands refuse with 2
    assert "output.naming: can make a file or folder name" in err and "255" in err


def test_config_validate_refuses_a_template_that_names_a_folder(isolated_env, capsys):
    write_config(isolated_env, "output:\n  naming: '{date}/'\n")
    code, _out, err = run_cli(capsys, "config", "validate")
    assert code == 1 and "ends with '/'" in err


def test_a_template_without_ext_still_gives_the_image_its_extension(isolated_env, output_dir):
    write_config(isolated_env, "output:\n  naming: '{date}/{slug}'\n")
    record = generate(Request("no ext", width=8, height=8))
    assert record.path.name == "no-ext.png"
    assert record.sidecar == record.path.with_suffix(".json")


def test_an_over_long_output_path_is_a_usage_error(isolated_env, tmp_path, capsys):
    name = "a" * 300
    for output in (f"{tmp_path}/{name}", f"{tmp_path}/{name}.png", f"{tmp_path}/{name}/"):
        code, _out, err = run_cli(capsys, "generate", "x", "--size", "8x8", "-o", output)
        assert code == 2, err
        assert "--output: the name aaaa" in err and "bytes long; file systems take 255" in err
        assert "internal error" not in err


def test_an_unwritable_output_folder_advises_another_output_not_the_flag_given(
    isolated_env, tmp_path, capsys
):
    if os.geteuid() == 0:
        pytest.skip("root writes anywhere")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    code, _out, err = run_cli(capsys, "generate", "x", "-o", f"{folder}/")
    assert code == 1 and "is not writable; pass another --output" in err


def test_an_unwritable_output_folder_from_the_config_advises_the_config(
    isolated_env, tmp_path, capsys
):
    blocker = tmp_path / "file"
    blocker.write_text("")
    write_config(isolated_env, f"output:\n  dir: {blocker}/sub\n")
    code, _out, err = run_cli(capsys, "generate", "x")
    assert code == 1 and "set output.dir in imagen.yaml or pass --output" in err
    code, _out, err = run_cli(capsys, "generate", "x", "-o", f"{blocker}/sub/")
    assert code == 1 and err.rstrip().endswith("pass another --output")


# A generate that stops, for the test to SIGKILL it, right after the step named
# by argv[2]: "linked" (the image has its final name, nothing after it ran) or
# "temp" (the image bytes are in the hidden temporary file).
KILLABLE = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    marker, step = Path(sys.argv[1]), sys.argv[2]
    real_link, real_fsync = os.link, os.fsync

    def stop():
        marker.write_text("ready")
        while True:
            time.sleep(60)

    def link(src, dst):
        real_link(src, dst)
        if step == "linked" and str(dst).endswith(".png"):
            stop()

    def fsync(fd):
        real_fsync(fd)
        if step == "temp":
            stop()

    os.link, os.fsync = link, fsync
    from imagen_core import Request, generate
    generate(Request("killed mid-write", width=16, height=16, seed=3))
    """
)


def kill_at(step: str, tmp_path: Path) -> None:
    marker = tmp_path / f"{step}.marker"
    process = subprocess.Popen([sys.executable, "-c", KILLABLE, str(marker), step])
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert process.poll() is None, "the generate ended before reaching its step"
            assert time.monotonic() < deadline, f"never reached {step}"
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()


def test_sigkill_right_after_the_image_is_linked_leaves_its_sidecar_and_a_true_row(
    isolated_env, output_dir, tmp_path
):
    kill_at("linked", tmp_path)
    (image,) = output_dir.rglob("*.png")
    assert image.with_suffix(".json").exists()
    (row,) = ledger_rows()
    assert row["status"] == "interrupted" and row["backend"] == "mock"
    assert row["error"] == "interrupted before the image was written"
    assert row["model"] == "mock-procedural-v1"


def test_a_dead_writers_temp_file_is_removed_by_the_next_write_to_its_folder(
    isolated_env, output_dir, tmp_path
):
    kill_at("temp", tmp_path)
    (part,) = output_dir.rglob(".imagen-*.part")
    assert not list(output_dir.rglob("*.png"))
    record = generate(Request("fresh", width=8, height=8))
    assert record.path.parent == part.parent
    assert part.exists()  # a young one may be another process at work
    old = time.time() - 2 * 3600
    os.utime(part, (old, old))
    from imagen_core import pipeline

    pipeline._swept.clear()  # a folder is swept every few minutes: as a new process
    generate(Request("next", width=8, height=8))
    assert not part.exists()
    assert not list(output_dir.rglob(".imagen-*.part"))
