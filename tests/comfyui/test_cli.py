"""The comfyui backend through the command line: exit codes, one-line messages,
the config block's validation, `imagen comfyui workflows` and the sample config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.comfyui.test_client import free_port, image_graph, write_workflow
from tests.helpers import run_cli, without_provenance, write_config


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("imagen: "), err
    assert "Traceback" not in err
    return lines[0].removeprefix("imagen: ")


def test_generate_writes_the_image(comfy, configure, capsys, output_dir):
    configure()
    code, out, err = run_cli(capsys, "generate", "a", "cat", "--size", "64x32", "--seed", "9")
    assert (code, err) == (0, "")
    path = Path(out.strip())
    assert path.name.endswith("-a-cat-9.png") and path.parent.parent == output_dir.resolve()
    assert without_provenance(path.read_bytes()) in comfy.files.values()
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["backend"] == {"name": "comfy", "type": "comfyui"}
    assert sidecar["model"] == "FLUX.1 [schnell] fp8"
    assert sidecar["metadata"]["workflow"] == "flux1-schnell"


def test_not_reachable_exits_1_with_one_line(isolated_env, capsys):
    port = free_port()
    write_config(
        isolated_env, f"backends:\n  local: {{type: comfyui, url: 'http://127.0.0.1:{port}'}}\n"
    )
    code, out, err = run_cli(capsys, "generate", "a cat", "-b", "local")
    assert (code, out) == (1, "")
    assert one_error_line(err) == (
        f"ComfyUI at http://127.0.0.1:{port} is not reachable (is it running?)"
    )


def test_a_missing_model_exits_1_with_one_line(comfy, configure, capsys):
    comfy.models = {}
    configure(workflow="sd35-medium")
    code, _, err = run_cli(capsys, "generate", "a cat")
    assert code == 1
    assert one_error_line(err).endswith(
        "sd3.5_medium_incl_clips_t5xxlfp8scaled.safetensors is not in ComfyUI's "
        "models/checkpoints (node 4 (CheckpointLoaderSimple) input ckpt_name); download it from "
        "huggingface.co/Comfy-Org/stable-diffusion-3.5-fp8 — see docs/backends.md"
    )


def test_an_execution_error_exits_1_with_one_line(comfy, configure, capsys):
    comfy.script.fail_class = "CLIPTextEncode"
    comfy.script.fail_type = "RuntimeError"
    comfy.script.fail_message = "a long\nmultiline\n  message"
    configure()
    code, _, err = run_cli(capsys, "generate", "a cat")
    assert code == 1
    assert one_error_line(err) == (
        "ComfyUI failed in node 6 (CLIPTextEncode): RuntimeError: a long multiline message"
    )


def test_a_timeout_exits_1_with_one_line(comfy, configure, capsys):
    comfy.script.delay_s = 3
    configure(timeout_s=0.3)
    code, _, err = run_cli(capsys, "generate", "a cat")
    assert code == 1
    assert one_error_line(err).endswith("within 0.3 s (timeout_s); interrupted it")
    assert comfy.seen("POST", "/interrupt")


def test_ctrl_c_cancels_the_prompt_and_exits_130(comfy, configure, capsys):
    # The prompt ends only through the interrupt (the fake stops at once then).
    comfy.script.delay_s = 60
    # A real Ctrl-C: SIGINT to this process while the prompt runs on the server.
    comfy.script.on_start = lambda _pid: threading.Timer(
        0.1, os.kill, (os.getpid(), signal.SIGINT)
    ).start()
    configure()
    # Python keeps SIGINT ignored when it starts ignored (pytest run in the
    # background of a non-interactive shell, e.g. under nohup or CI): give this
    # test the handler an interactive terminal has.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, out, err = run_cli(capsys, "generate", "a cat")
    finally:
        signal.signal(signal.SIGINT, previous)
    # (click writes a newline first, to end the line the ^C was echoed on.)
    assert (code, out, err.strip()) == (130, "", "imagen: interrupted")
    prompt_id = comfy.seen("POST", "/prompt")[0]["body"]["prompt_id"]
    assert [r["body"] for r in comfy.seen("POST", "/interrupt")] == [{"prompt_id": prompt_id}]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "{type: comfyui, workflw: sd35-medium}",
            "backends.c.workflw: unknown key (did you mean 'workflow'?); known keys: url, "
            "workflow, vars, defaults, timeout_s, gpu_usd_per_hour, output_node (CONFIG:2:22)",
        ),
        (
            "{type: comfyui, defaults: {stpes: 4}}",
            "backends.c.defaults.stpes: unknown key (did you mean 'steps'?); known keys: steps, "
            "cfg, denoise, sampler, scheduler, negative, batch_size, size_multiple (CONFIG:2:33)",
        ),
        (
            "{type: comfyui, defaults: {steps: '4'}}",
            "backends.c.defaults.steps: expected an integer, got '4' (CONFIG:2:40)",
        ),
        (
            "{type: comfyui, workflow: flux-schnell}",
            "backends.c: unknown bundled workflow 'flux-schnell' (did you mean 'flux1-schnell'?)",
        ),
        (
            "{type: comfyui, url: 'localhost:8188'}",
            "backends.c: url must be an http:// or https:// URL such as http://127.0.0.1:8188, "
            "got 'localhost:8188'",
        ),
        (
            "{type: comfyui, vars: {seed: 3}}",
            "backends.c: vars.seed: ${seed} comes from the request",
        ),
        (
            "{type: comfyui, vars: {steps: 3}}",
            "backends.c: vars.steps: ${steps} is a built-in placeholder; set defaults.steps instead",
        ),
        ("{type: comfyui, timeout_s: 0}", "backends.c: timeout_s must be more than 0, got 0.0"),
    ],
)
def test_config_mistakes_exit_2_with_file_and_line(isolated_env, capsys, block, message):
    path = write_config(isolated_env, f"backends:\n  c: {block}\n")
    code, out, err = run_cli(capsys, "generate", "a cat", "-b", "c")
    assert (code, out) == (2, "")
    assert message.replace("CONFIG", str(path)) in one_error_line(err)
    code, _, err = run_cli(capsys, "config", "validate")
    assert code == 1 and message.replace("CONFIG", str(path)) in err


def test_a_ui_format_workflow_exits_2_saying_save_api(configure, capsys, tmp_path):
    path = tmp_path / "exported.json"
    path.write_text(json.dumps({"last_node_id": 3, "nodes": [], "links": []}))
    configure(workflow=str(path))
    code, _, err = run_cli(capsys, "generate", "a cat")
    assert code == 2
    assert one_error_line(err) == (
        f"{path} is a ComfyUI UI-format workflow (it has nodes and links), which the API cannot "
        "run; export it with Save (API) (enable the dev mode options in older ComfyUI versions)"
    )


def test_a_placeholder_without_value_exits_2(comfy, configure, capsys, tmp_path):
    configure(workflow=write_workflow(tmp_path, image_graph(color="${tint}")))
    code, _, err = run_cli(capsys, "generate", "a cat")
    assert code == 2
    assert one_error_line(err) == (
        "workflow mine: placeholder ${tint} in node 1 (EmptyImage) input color has no value; "
        "set vars.tint in the backend's block"
    )


def test_workflows_command_lists_placeholders_defaults_and_files(capsys):
    code, out, err = run_cli(capsys, "comfyui", "workflows")
    assert (code, err) == (0, "")
    blocks = {block.split()[0]: block for block in out.split("\n\n")}
    assert list(blocks) == [
        "flux1-fill-inpaint",
        "flux1-schnell",
        "flux2-klein",
        "flux2-klein-edit",
        "flux2-klein-edit-ref",
        "sd35-medium",
        "sd35-medium-img2img",
    ]
    schnell = blocks["flux1-schnell"]
    assert schnell.startswith("flux1-schnell  FLUX.1 [schnell] fp8\n")
    assert (
        "placeholders  ${prompt} ${seed} ${steps} ${width} ${height} ${cfg} ${denoise} "
        "${sampler} ${scheduler} ${batch_size}\n" in schnell
    )
    assert "defaults      steps=4 cfg=1.0 sampler='euler'" in schnell
    assert (
        "models/checkpoints/flux1-schnell-fp8.safetensors  from huggingface.co/Comfy-Org/flux1-schnell"
        in schnell
    )
    assert "${negative}" in blocks["sd35-medium"] and "${negative}" not in schnell
    assert (
        "models/vae/flux2-vae.safetensors  from huggingface.co/Comfy-Org/flux2-dev"
        in (blocks["flux2-klein"])
    )
    # Which inputs each takes, in words.
    assert "    inputs        none: text to image\n" in schnell
    assert "    inputs        ${image}: the first --image\n" in blocks["flux2-klein-edit"]
    assert (
        "    inputs        ${image}: the first --image; ${image_2}: the second --image\n"
        in blocks["flux2-klein-edit-ref"]
    )
    assert (
        "    inputs        ${image}: the first --image; ${denoise}: --strength\n"
        in blocks["sd35-medium-img2img"]
    )
    assert (
        "    inputs        ${image}: the first --image; ${mask}: the mask, white = repaint "
        "(--mask); ${denoise}: --strength\n" in blocks["flux1-fill-inpaint"]
    )


def test_workflows_command_json_and_custom_files(capsys, tmp_path):
    path = write_workflow(tmp_path, image_graph(color="${tint}"))
    code, out, _ = run_cli(capsys, "comfyui", "workflows", "--json", path)
    assert code == 0
    (report,) = json.loads(out)
    assert report["name"] == "mine" and report["source"] == path
    assert report["placeholders"] == [
        {"name": "tint", "type": None, "node": "1", "class_type": "EmptyImage", "input": "color"}
    ]
    assert report["inputs"] == []
    assert report["capabilities"] == {
        "text_to_image": True,
        "images": 0,
        "strength": False,
        "mask": False,
    }
    code, out, _ = run_cli(capsys, "comfyui", "workflows", "--json", "flux1-fill-inpaint")
    (report,) = json.loads(out)
    assert report["capabilities"] == {
        "text_to_image": False,
        "images": 1,
        "strength": True,
        "mask": True,
    }
    assert {"name": "mask", "type": "str", "node": "40", "class_type": "LoadImageMask"}.items() <= (
        next(p for p in report["placeholders"] if p["name"] == "mask").items()
    )
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    code, _, err = run_cli(capsys, "comfyui", "workflows", str(bad))
    assert code == 2 and one_error_line(err).startswith(f"{bad} is not JSON")


def test_config_init_suggests_one_instance_per_workflow_and_validates(capsys, tmp_path):
    code, sample, _ = run_cli(capsys, "config", "init")
    assert code == 0
    for name, workflow in [
        ("flux-schnell-local", "flux1-schnell"),
        ("flux2-klein-local", "flux2-klein"),
        ("sd35-medium-local", "sd35-medium"),
        ("flux2-klein-edit-local", "flux2-klein-edit"),
        ("flux1-fill-inpaint-local", "flux1-fill-inpaint"),
    ]:
        assert f"  {name}:\n    type: comfyui\n" in sample
        assert f'    workflow: "{workflow}"\n' in sample
    path = tmp_path / "sample.yaml"
    path.write_text(sample)
    code, out, err = run_cli(capsys, "config", "validate", "--config", str(path))
    assert (code, err) == (0, "") and out.strip() == f"{path}: ok"
    code, out, _ = run_cli(capsys, "backends", "--config", str(path))
    assert code == 0 and "sd35-medium-local" in out and "comfyui" in out


def test_compare_runs_two_workflows_on_one_server(comfy, isolated_env, capsys, output_dir):
    write_config(
        isolated_env,
        "output: {preview: off}\nbackends:\n"
        f"  schnell: {{type: comfyui, url: '{comfy.url}', workflow: flux1-schnell}}\n"
        f"  sd35: {{type: comfyui, url: '{comfy.url}', workflow: sd35-medium}}\n",
    )
    code, out, err = run_cli(capsys, "compare", "a cat", "-m", "schnell,sd35", "--size", "64x64")
    assert code == 0, err
    assert out.count(" ok ") == 2
    assert len(comfy.seen("POST", "/prompt")) == 2


PROBE = """
import json, sys
from imagen_core.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args", [("--help",), ("comfyui", "--help"), ("backends",), ("config", "init")]
)
def test_starting_imports_nothing_heavy(args, tmp_path):
    env = {
        **os.environ,
        "IMAGEN_LOAD_PLUGINS": "imagen-comfyui",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path),
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, check=True
    )
    modules = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "imagen_comfyui" in modules and "comfyui" in proc.stdout
    heavy = {m.partition(".")[0] for m in modules} & {"requests", "websocket", "urllib3", "PIL"}
    assert not heavy
    # Registering the type needs only its config class: no templates, no protocol.
    # `imagen backends` builds each backend to ask what it accepts, but that
    # imports no HTTP or image library either.
    if args != ("backends",):
        assert not modules & {"imagen_comfyui.backend", "imagen_comfyui.workflows"}
