"""The backend against the fake ComfyUI: the whole flow of a prompt, the ways a
real server and its websocket misbehave, and every error path."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest
import requests

from imagen_comfyui.errors import WorkflowError
from imagen_core import BackendError, Request, Session
from tests.comfyui.fake_comfyui import FakeComfyUI
from tests.helpers import idat, without_provenance, write_config


def generate(request: Request | None = None, progress=None):
    return Session().generate(request or Request("a cat", width=64, height=48), progress=progress)


def posted(comfy: FakeComfyUI, index: int = -1) -> dict:
    """The body of a POST /prompt the fake received."""
    return comfy.seen("POST", "/prompt")[index]["body"]


def history_gets(comfy: FakeComfyUI, prompt_id: str) -> list[dict]:
    return comfy.seen("GET", f"/history/{prompt_id}")


def write_workflow(tmp_path: Path, graph: dict, name: str = "mine") -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(graph))
    return str(path)


def image_graph(**inputs) -> dict:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0, **inputs},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "t"}},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ the flow


def test_a_generation_follows_the_protocol(comfy, configure, output_dir):
    configure()
    record = generate(Request("a lighthouse", width=64, height=48))
    body = posted(comfy)
    ws_client = comfy.event_names("ws_connect")
    # The socket is connected before the prompt is posted, with the same client id.
    order = [r["path"] for r in comfy.requests]
    assert order[:2] == ["/ws", "/prompt"]
    assert ws_client == [body["client_id"]]
    graph = body["prompt"]
    result = record.result
    assert graph["6"]["inputs"]["text"] == "a lighthouse"
    assert graph["31"]["inputs"]["seed"] == result.seed and result.seed > 0
    assert (graph["27"]["inputs"]["width"], graph["27"]["inputs"]["height"]) == (64, 48)
    assert graph["31"]["inputs"]["steps"] == 4
    assert graph["31"]["inputs"]["cfg"] == 1.0 and isinstance(graph["31"]["inputs"]["cfg"], float)
    # The image is the saved file, fetched through /view, written by the core.
    prompt_id = result.metadata["prompt_id"]
    images = comfy.history[prompt_id]["outputs"]["9"]["images"]
    saved = comfy.files[("output", "imagen", images[0]["filename"])]
    # ... with imagen's metadata chunks added, every byte of the server's file kept.
    assert record.path.read_bytes() == result.image and without_provenance(result.image) == saved
    assert comfy.seen("GET", "/view")[0]["query"] == images[0]
    assert result.model == "FLUX.1 [schnell] fp8" and result.mime_type == "image/png"
    assert result.cost_usd == 0.0
    assert result.metadata["workflow"] == "flux1-schnell"
    assert result.metadata["steps"] == 4
    assert result.metadata["cached"] is False
    assert result.metadata["server"] == comfy.url
    sidecar = json.loads(record.sidecar.read_text())
    assert sidecar["metadata"]["workflow"] == "flux1-schnell" and sidecar["seed"] == result.seed
    # Nothing was cancelled.
    assert not comfy.seen("POST", "/interrupt") and not comfy.seen("POST", "/queue")


def test_the_backend_reports_its_server_as_device(comfy, configure):
    configure()
    _, backend = Session().backend("comfy")
    assert backend.device == comfy.url.removeprefix("http://")


def test_progress_reports_sampler_steps(comfy, configure):
    configure()
    calls = []
    generate(progress=lambda done, total, message="": calls.append((done, total, message)))
    steps = [(d, t) for d, t, m in calls if m == "KSampler" and t]
    assert steps == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert calls[0] == (0, 0, "queued")
    # The nodes after the sampler do not carry its step count.
    after = calls[calls.index((4, 4, "KSampler")) + 1 :]
    assert after and all((d, t) == (0, 0) for d, t, _m in after)
    assert {m for _d, _t, m in after} >= {"VAEDecode"}
    # Binary preview frames came between the steps and were skipped.
    assert len([k for _, k in comfy.event_names("sent") if k == "preview"]) == 4


def test_steps_and_seed_from_the_request_are_used(comfy, configure):
    configure()
    record = generate(Request("a cat", width=64, height=64, seed=42, steps=2))
    inputs = posted(comfy)["prompt"]["31"]["inputs"]
    assert (inputs["seed"], inputs["steps"]) == (42, 2)
    assert record.result.seed == 42 and record.result.metadata["steps"] == 2


def test_seed_zero_picks_a_new_seed_each_time(comfy, configure):
    configure()
    seeds = {generate().result.seed for _ in range(3)}
    assert len(seeds) == 3 and 0 not in seeds
    assert {posted(comfy, i)["prompt"]["31"]["inputs"]["seed"] for i in range(3)} == seeds


def test_defaults_vars_and_extra_fill_the_graph(comfy, configure, tmp_path):
    graph = image_graph(color="${color}")
    graph["3"] = {
        "class_type": "EmptySD3LatentImage",
        "inputs": {"width": "${width}", "height": "${height}", "batch_size": "${batch_size}"},
    }
    configure(
        "vars: {color: 255}", "defaults: {batch_size: 2}", workflow=write_workflow(tmp_path, graph)
    )
    generate()
    inputs = posted(comfy)["prompt"]
    assert inputs["1"]["inputs"]["color"] == 255
    assert inputs["3"]["inputs"]["batch_size"] == 2
    generate(Request("x", width=32, height=32, extra={"color": 7, "batch_size": 1}))
    assert posted(comfy)["prompt"]["1"]["inputs"]["color"] == 7
    assert posted(comfy)["prompt"]["3"]["inputs"]["batch_size"] == 1


def test_vars_keep_their_yaml_types(comfy, configure, tmp_path):
    graph = image_graph(color="${color}", loras="${loras}", strength="${strength}", on="${on}")
    configure(
        "vars: {color: 3, loras: [a.safetensors, b.safetensors], strength: 0.75, on: true}",
        workflow=write_workflow(tmp_path, graph),
    )
    generate()
    inputs = posted(comfy)["prompt"]["1"]["inputs"]
    assert inputs["color"] == 3 and type(inputs["color"]) is int
    assert inputs["loras"] == ["a.safetensors", "b.safetensors"]
    assert inputs["strength"] == 0.75 and inputs["on"] is True


def test_defaults_override_the_workflow_data_and_the_request_overrides_both(comfy, configure):
    configure("defaults: {steps: 6, cfg: 2, sampler: heun}")
    generate()
    inputs = posted(comfy)["prompt"]["31"]["inputs"]
    assert (inputs["steps"], inputs["cfg"], inputs["sampler_name"]) == (6, 2.0, "heun")
    generate(Request("x", width=64, height=64, steps=3, extra={"cfg": 1.5}))
    inputs = posted(comfy)["prompt"]["31"]["inputs"]
    assert (inputs["steps"], inputs["cfg"]) == (3, 1.5)


def test_negative_prompt_where_the_model_has_one(comfy, configure, capsys):
    configure(workflow="sd35-medium")
    generate(Request("a cat", negative="blurry", width=64, height=64))
    assert posted(comfy)["prompt"]["40"]["inputs"]["text"] == "blurry"
    configure(workflow="flux1-schnell")
    generate(Request("a cat", negative="blurry", width=64, height=64))
    generate(Request("a cat", negative="blurry", width=64, height=64))
    assert "blurry" not in json.dumps(posted(comfy)["prompt"])
    err = capsys.readouterr().err
    assert err.count("workflow flux1-schnell has no ${negative}; --negative is ignored") == 1


def test_sizes_are_rounded_to_the_models_multiple(comfy, configure, capsys):
    configure()
    generate(Request("x", width=1000, height=56))
    inputs = posted(comfy)["prompt"]["27"]["inputs"]
    assert (inputs["width"], inputs["height"]) == (1008, 64)
    assert "flux1-schnell needs sizes in multiples of 16: 1000x56 becomes 1008x64" in (
        capsys.readouterr().err
    )


def test_batch_first_image_is_the_result_all_in_metadata(comfy, configure):
    configure("defaults: {batch_size: 3}")
    result = generate().result
    listed = result.metadata["images"]
    assert len(listed) == 3 and len({i["filename"] for i in listed}) == 3
    assert (
        without_provenance(result.image) == comfy.files[("output", "imagen", listed[0]["filename"])]
    )
    for item in listed:  # each one can be fetched by its URL
        answer = requests.get(item["url"], timeout=5)
        assert answer.content == comfy.files[("output", item["subfolder"], item["filename"])]


def test_output_node_picks_the_images(comfy, configure, tmp_path):
    graph = image_graph()
    graph["3"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    path = write_workflow(tmp_path, graph)
    configure(workflow=path)
    assert generate().result.metadata["images"][0]["type"] == "output"  # saved before previews
    configure('output_node: "3"', workflow=path)
    result = generate().result
    assert [i["node"] for i in result.metadata["images"]] == ["3"]
    served = comfy.files[("temp", "", result.metadata["images"][0]["filename"])]
    assert without_provenance(result.image) == served


# ------------------------------------------------------------------ the server's quirks


def test_a_resubmitted_graph_is_a_cache_hit_that_still_gives_the_image(comfy, configure):
    configure()
    first = generate(Request("a cat", width=64, height=64, seed=7)).result
    files = dict(comfy.files)
    sent_before = len(comfy.event_names("sent"))
    second = generate(Request("a cat", width=64, height=64, seed=7)).result
    # ComfyUI ran nothing: every node cached, no `executing` for them, no new file.
    sent = [kind for _, kind in comfy.event_names("sent")[sent_before:]]
    assert "progress" not in sent and sent.count("executing") == 1  # only `node: null`
    assert comfy.files == files
    assert idat(second.image) == idat(first.image)
    assert second.metadata["cached"] is True and first.metadata["cached"] is False
    assert second.metadata["images"] == first.metadata["images"]


def test_a_cache_hit_whose_file_is_gone_says_what_to_do(comfy, configure):
    configure()
    first = generate(Request("a cat", width=64, height=64, seed=7)).result
    comfy.delete_file("output", "imagen", first.metadata["images"][0]["filename"])
    with pytest.raises(BackendError) as info:
        generate(Request("a cat", width=64, height=64, seed=7))
    assert "answered from its cache" in str(info.value) and "another seed" in str(info.value)


def test_history_lagging_behind_success_is_waited_for(comfy, configure):
    comfy.script.history_lag_s = 0.3
    configure()
    record = generate()
    prompt_id = record.result.metadata["prompt_id"]
    gets = history_gets(comfy, prompt_id)
    success = comfy.completed_at[prompt_id]
    # Asked right after the success message, found nothing, asked again.
    assert len(gets) >= 2 and gets[0]["time"] < success + 0.3 < gets[-1]["time"]
    assert record.result.image


def test_without_a_websocket_the_history_is_polled(comfy, configure):
    comfy.script.ws_enabled = False
    comfy.script.delay_s = 0.2
    configure()
    record = generate()
    assert comfy.event_names("ws_connect") == []
    assert len(history_gets(comfy, record.result.metadata["prompt_id"])) > 3
    assert record.result.image and record.path.exists()


@pytest.mark.parametrize("after", ["execution_start", "progress", "execution_success"])
def test_a_dropped_websocket_falls_back_to_polling(comfy, configure, after):
    comfy.script.drop_ws_after = after
    comfy.script.delay_s = 0.2
    configure()
    record = generate()
    assert comfy.event_names("ws_close")
    assert history_gets(comfy, record.result.metadata["prompt_id"])
    assert record.result.image


def test_a_socket_that_goes_silent_does_not_lose_the_result(comfy, configure):
    # The socket stays open but delivers nothing after the start (ComfyUI #9393).
    comfy.script.silent_after = "execution_start"
    configure()
    started = time.monotonic()
    record = generate()
    assert record.result.image
    assert time.monotonic() - started < 2  # found by the watchdog, not the timeout


def test_other_clients_broadcasts_are_ignored(comfy, configure):
    comfy.script.foreign_noise = True
    configure()
    calls = []
    record = generate(progress=lambda d, t, m="": calls.append((d, t)))
    assert record.result.image
    assert (1, 99) not in calls


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("failures", "ok"), [(2, True), (3, False)])
def test_view_server_errors_are_retried_a_few_times(comfy, configure, failures, ok):
    comfy.script.view_failures = failures
    configure()
    if ok:
        assert generate().result.image
    else:
        with pytest.raises(BackendError) as info:
            generate()
        assert str(info.value).startswith(
            f"ComfyUI at {comfy.url} answered HTTP 500 to GET /view ("
        )
        assert str(info.value).endswith("): 500 Internal Server Error")
    assert len(comfy.seen("GET", "/view")) == 3


def test_connection_refused_says_comfyui_is_not_reachable(isolated_env):
    port = free_port()
    write_config(
        isolated_env,
        f"default_backend: c\nbackends:\n  c: {{type: comfyui, url: 'http://127.0.0.1:{port}'}}\n",
    )
    with pytest.raises(BackendError) as info:
        generate()
    assert (
        str(info.value) == f"ComfyUI at http://127.0.0.1:{port} is not reachable (is it running?)"
    )


def test_a_missing_model_file_names_the_file_and_folder(comfy, configure):
    comfy.models["checkpoints"] = ["something-else.safetensors"]
    configure()
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value) == (
        f"ComfyUI at {comfy.url} rejected workflow flux1-schnell: flux1-schnell-fp8.safetensors "
        "is not in ComfyUI's models/checkpoints (node 30 (CheckpointLoaderSimple) input "
        "ckpt_name); download it from huggingface.co/Comfy-Org/flux1-schnell — see "
        "docs/backends.md"
    )


def test_several_missing_files_are_all_named(comfy, configure):
    comfy.models = {"checkpoints": []}
    configure(workflow="flux2-klein")
    with pytest.raises(BackendError) as info:
        generate()
    message = str(info.value)
    for name, folder in [
        ("flux-2-klein-4b.safetensors", "diffusion_models"),
        ("qwen_3_4b.safetensors", "text_encoders"),
        ("flux2-vae.safetensors", "vae"),
    ]:
        assert f"{name} is not in ComfyUI's models/{folder}" in message
    assert "\n" not in message


def test_an_unknown_node_class_is_a_missing_custom_node(comfy, configure, tmp_path):
    graph = image_graph()
    graph["1"]["class_type"] = "FancyCustomNode"
    configure(workflow=write_workflow(tmp_path, graph))
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value) == (
        f"ComfyUI at {comfy.url} rejected workflow mine: Cannot execute because node "
        "FancyCustomNode does not exist. (Node ID '#1'): install the custom node that provides "
        "it, or update ComfyUI if it is a core node"
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "defaults: {batch_size: 5000}",
            "node 27 (EmptySD3LatentImage) input batch_size: Value 5000 bigger than max of 4096",
        ),
        (
            "defaults: {sampler: nope}",
            "node 31 (KSampler) input sampler_name: 'nope' is not one of ComfyUI's choices",
        ),
    ],
)
def test_invalid_inputs_name_node_input_and_reason(comfy, configure, line, message):
    configure(line)
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value) == f"ComfyUI at {comfy.url} rejected workflow flux1-schnell: " + (
        message + (" (update ComfyUI?)" if "choices" in message else "")
    )


def test_a_wrong_type_from_vars_is_comfyuis_conversion_error(comfy, configure, tmp_path):
    configure(
        "vars: {color: red}", workflow=write_workflow(tmp_path, image_graph(color="${color}"))
    )
    with pytest.raises(BackendError) as info:
        generate()
    assert (
        "node 1 (EmptyImage) input color: Failed to convert an input value to a INT value: color, red"
        in str(info.value)
    )


def test_a_200_with_node_errors_is_an_error_and_the_rest_is_cancelled(comfy, configure, tmp_path):
    graph = image_graph()
    graph["3"] = {"class_type": "ImageInvert", "inputs": {}}
    graph["4"] = {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "u"}}
    configure(workflow=write_workflow(tmp_path, graph))
    comfy.queue_foreign(delay_s=2)  # ours stays pending
    with pytest.raises(BackendError) as info:
        generate()
    prompt_id = posted(comfy)["prompt_id"]
    assert str(info.value) == (
        f"ComfyUI at {comfy.url} accepted only part of workflow mine: node 3 (ImageInvert) "
        "input image: Required input is missing; removed it from ComfyUI's queue"
    )
    assert [r["body"] for r in comfy.seen("POST", "/queue")] == [{"delete": [prompt_id]}]
    assert not comfy.seen("POST", "/interrupt")


def test_an_execution_error_names_the_node_and_exception(comfy, configure):
    comfy.script.fail_class = "KSampler"
    configure()
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value) == (
        "ComfyUI failed in node 31 (KSampler): torch.OutOfMemoryError: CUDA out of memory. "
        "Tried to allocate 2.00 GiB; try a smaller --size or batch, or free GPU memory"
    )
    assert not comfy.seen("POST", "/interrupt")  # it ended: nothing to cancel


def test_an_execution_error_is_found_by_polling_too(comfy, configure):
    comfy.script.ws_enabled = False
    comfy.script.fail_class = "VAEDecode"
    comfy.script.fail_type = "RuntimeError"
    comfy.script.fail_message = "shapes do not match"
    configure()
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value) == (
        "ComfyUI failed in node 8 (VAEDecode): RuntimeError: shapes do not match"
    )


def test_an_interrupt_from_elsewhere_is_reported(comfy, configure):
    comfy.script.delay_s = 1.0
    # Someone presses Cancel in ComfyUI's own page while the sampler runs.
    comfy.script.on_start = lambda _pid: threading.Timer(
        0.2, lambda: requests.post(f"{comfy.url}/interrupt", timeout=5)
    ).start()
    configure()
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value) == (
        "ComfyUI interrupted the prompt in node 31 (KSampler): it was cancelled on the server"
    )


def test_a_timeout_interrupts_the_running_prompt(comfy, configure):
    comfy.script.delay_s = 5.0
    configure(timeout_s=0.4)
    started = time.monotonic()
    with pytest.raises(BackendError) as info:
        generate()
    prompt_id = posted(comfy)["prompt_id"]
    assert str(info.value) == (
        f"ComfyUI at {comfy.url} did not finish workflow flux1-schnell within 0.4 s (timeout_s); "
        "interrupted it"
    )
    assert time.monotonic() - started < 2
    assert [r["body"] for r in comfy.seen("POST", "/interrupt")] == [{"prompt_id": prompt_id}]
    assert not comfy.seen("POST", "/queue")
    wait_for(lambda: prompt_id in comfy.history)
    assert comfy.history[prompt_id]["status"]["messages"][-1][0] == "execution_interrupted"


def test_a_timeout_removes_a_pending_prompt_from_the_queue(comfy, configure):
    other = comfy.queue_foreign(delay_s=0.6)
    configure(timeout_s=0.3)
    with pytest.raises(BackendError) as info:
        generate()
    prompt_id = posted(comfy)["prompt_id"]
    assert str(info.value).endswith("within 0.3 s (timeout_s); removed it from ComfyUI's queue")
    assert [r["body"] for r in comfy.seen("POST", "/queue")] == [{"delete": [prompt_id]}]
    # The other client's running prompt was left alone.
    assert not comfy.seen("POST", "/interrupt")
    wait_for(lambda: other in comfy.history)
    assert prompt_id not in comfy.history


@pytest.mark.parametrize("where", ["running", "pending"])
def test_ctrl_c_cancels_the_prompt_and_propagates(comfy, configure, where):
    comfy.script.delay_s = 0.8
    if where == "pending":
        comfy.queue_foreign(delay_s=2)
    configure()

    def interrupt(done, total, message=""):
        if (where == "running" and total) or (where == "pending" and message == "queued"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(progress=interrupt)
    prompt_id = posted(comfy)["prompt_id"]
    if where == "running":
        assert [r["body"] for r in comfy.seen("POST", "/interrupt")] == [{"prompt_id": prompt_id}]
    else:
        assert [r["body"] for r in comfy.seen("POST", "/queue")] == [{"delete": [prompt_id]}]
        assert not comfy.seen("POST", "/interrupt")


def test_a_prompt_deleted_by_someone_else_is_noticed(comfy, configure):
    comfy.queue_foreign(delay_s=3)
    configure()

    def delete_ours() -> None:
        wait_for(lambda: comfy.seen("POST", "/prompt"))
        requests.post(
            f"{comfy.url}/queue", json={"delete": [posted(comfy)["prompt_id"]]}, timeout=5
        )

    thread = threading.Thread(target=delete_ours)
    thread.start()
    with pytest.raises(BackendError) as info:
        generate()
    thread.join()
    assert "is neither queued nor in the history" in str(info.value)
    assert "deleted from the queue, or ComfyUI restarted" in str(info.value)


def test_a_server_that_dies_while_running_is_reported(comfy, configure):
    comfy.script.delay_s = 5.0
    comfy.script.on_start = lambda _pid: threading.Timer(0.1, comfy.stop).start()
    configure()
    with pytest.raises(BackendError) as info:
        generate()
    assert str(info.value).startswith(f"ComfyUI at {comfy.url} stopped answering while running")


def test_a_placeholder_nothing_fills_fails_when_the_backend_starts(comfy, configure, tmp_path):
    configure(workflow=write_workflow(tmp_path, image_graph(color="${tint}")))
    with pytest.raises(WorkflowError) as info:
        generate()
    assert str(info.value) == (
        "workflow mine: placeholder ${tint} in node 1 (EmptyImage) input color has no value; "
        "set vars.tint in the backend's block"
    )
    assert comfy.requests == []


def wait_for(condition, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)
