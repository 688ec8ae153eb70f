"""Small ComfyUI fixes: every workflow file checked, missing core placeholders
warned about."""

from __future__ import annotations

from imagen_core import Request, Session
from tests.comfyui.test_client import image_graph, write_workflow
from tests.helpers import run_cli


def test_workflows_checks_every_file_given(capsys, tmp_path):
    good = write_workflow(tmp_path, image_graph(width="${width}", height="${height}"), "good")
    first, last = tmp_path / "first.json", tmp_path / "last.json"
    first.write_text("{")
    last.write_text("[]")
    code, out, err = run_cli(capsys, "comfyui", "workflows", str(first), good, str(last))
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"imagen: {first} is not JSON")
    assert lines[1].startswith(f"imagen: {last}")
    assert out.startswith("good ")  # the good one is still listed


def test_workflows_warns_of_missing_prompt_and_size_placeholders(capsys, tmp_path):
    path = write_workflow(tmp_path, image_graph(color="${tint}"))
    code, out, _err = run_cli(capsys, "comfyui", "workflows", path)
    assert code == 0
    assert "warning       has no ${prompt}; the prompt is ignored" in out
    assert "has no ${width} and ${height}; --size is ignored" in out


def test_generating_with_a_workflow_without_prompt_or_size_warns(
    comfy, configure, tmp_path, capsys
):
    # A name of its own: each warning is said once per process.
    configure(workflow=write_workflow(tmp_path, image_graph(), "bare-graph"))
    Session().generate(Request("a cat", width=640, height=480))
    err = capsys.readouterr().err
    assert "workflow bare-graph has no ${prompt}; the prompt is ignored" in err
    assert "workflow bare-graph has no ${width} and ${height}; --size is ignored" in err
