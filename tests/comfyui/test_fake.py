"""The fake ComfyUI answers as the real server was observed to answer
(shared/reference/comfyui-observed.md): the bodies and message orders below are
copied from that capture. If the fake drifted into being easier than the real
thing, the backend's tests would prove nothing."""

from __future__ import annotations

import json
import time

import requests
import websocket

EMPTY_SAVE = {
    "1": {
        "class_type": "EmptyImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 16711680},
    },
    "2": {
        "class_type": "SaveImage",
        "inputs": {"images": ["1", 0], "filename_prefix": "apitest/empty"},
    },
}


def post(comfy, body):
    return requests.post(f"{comfy.url}/prompt", json=body, timeout=5)


def _end(message, prompt_id) -> bool:
    data = message["data"]
    return (
        message["type"] == "executing"
        and data.get("node") is None
        and data.get("prompt_id") == prompt_id
    )


def test_400_for_a_missing_input_is_the_real_body(comfy):
    graph = json.loads(json.dumps(EMPTY_SAVE))
    del graph["1"]["inputs"]["color"]
    answer = post(comfy, {"prompt": graph})
    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert answer.json() == {
        "error": {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
            "details": "",
            "extra_info": {},
        },
        "node_errors": {
            "1": {
                "errors": [
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": "color",
                        "extra_info": {"input_name": "color"},
                    }
                ],
                "dependent_outputs": ["2"],
                "class_type": "EmptyImage",
            }
        },
    }


def test_400_bodies_without_node_errors(comfy):
    unknown = {"1": {"class_type": "NoSuchNodeClass", "inputs": {}}}
    assert post(comfy, {"prompt": unknown}).json() == {
        "error": {
            "type": "invalid_prompt",
            "message": "Cannot execute because node NoSuchNodeClass does not exist.",
            "details": "Node ID '#1'",
            "extra_info": {},
        },
        "node_errors": {},
    }
    no_output = {"1": EMPTY_SAVE["1"]}
    assert post(comfy, {"prompt": no_output}).json() == {
        "error": {
            "type": "prompt_no_outputs",
            "message": "Prompt has no outputs",
            "details": "",
            "extra_info": {},
        },
        "node_errors": {},
    }
    assert post(comfy, {"client_id": "x"}).json() == {
        "error": {
            "type": "no_prompt",
            "message": "No prompt provided",
            "details": "No prompt provided",
            "extra_info": {},
        },
        "node_errors": {},
    }
    broken = requests.post(f"{comfy.url}/prompt", data=b"{", timeout=5)
    assert broken.status_code == 500 and "Server got itself in trouble" in broken.text


def test_value_checks_match_comfyui(comfy):
    graph = json.loads(json.dumps(EMPTY_SAVE))
    graph["1"]["inputs"].update(width="not-a-number", height=99999)
    errors = post(comfy, {"prompt": graph}).json()["node_errors"]["1"]["errors"]
    assert errors[0]["type"] == "invalid_input_type"
    assert errors[0]["message"] == "Failed to convert an input value to a INT value"
    assert (
        errors[0]["details"]
        == "width, not-a-number, invalid literal for int() with base 10: 'not-a-number'"
    )
    assert errors[1]["type"] == "value_bigger_than_max"
    assert errors[1]["message"] == "Value 99999 bigger than max of 16384"
    mismatch = {
        "1": {
            "class_type": "EmptySD3LatentImage",
            "inputs": {"width": 64, "height": 64, "batch_size": 1},
        },
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    body = post(comfy, {"prompt": mismatch}).json()
    assert body["error"]["details"] == (
        "Return type mismatch between linked nodes: images, received_type(LATENT) mismatch input_type(IMAGE)"
    )
    assert body["node_errors"]["2"]["errors"][0]["type"] == "return_type_mismatch"


def test_a_200_can_carry_node_errors_and_run_the_valid_branch(comfy):
    graph = json.loads(json.dumps(EMPTY_SAVE))
    graph["10"] = {"class_type": "ImageInvert", "inputs": {}}
    graph["11"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["10", 0], "filename_prefix": "b"},
    }
    answer = post(comfy, {"prompt": graph})
    assert answer.status_code == 200
    body = answer.json()
    assert body["node_errors"] == {
        "10": {
            "errors": [
                {
                    "type": "required_input_missing",
                    "message": "Required input is missing",
                    "details": "image",
                    "extra_info": {"input_name": "image"},
                }
            ],
            "dependent_outputs": ["11"],
            "class_type": "ImageInvert",
        }
    }
    entry = _history(comfy, body["prompt_id"])
    assert list(entry["outputs"]) == ["2"] and entry["prompt"][4] == ["2"]


def test_a_dropped_branch_linking_to_an_absent_node_does_not_stop_the_job(comfy):
    # The queued prompt keeps the invalid branch; ComfyUI's cache keys for it
    # (a node that does not exist signs as NaN) must not break the valid one.
    graph = json.loads(json.dumps(EMPTY_SAVE))
    graph["10"] = {"class_type": "ImageInvert", "inputs": {"image": ["99", 0]}}
    graph["11"] = {
        "class_type": "SaveImage",
        "inputs": {"images": ["10", 0], "filename_prefix": "b"},
    }
    for _ in range(2):  # the second time through the cache as well
        body = post(comfy, {"prompt": graph}).json()
        assert body["node_errors"]["10"]["errors"][0]["type"] == "exception_during_validation"
        entry = _history(comfy, body["prompt_id"])
        assert entry["status"]["status_str"] == "success" and list(entry["outputs"]) == ["2"]


def test_the_message_order_of_one_job(comfy):
    messages, prompt_id = _job(comfy, EMPTY_SAVE)
    assert [m["type"] for m in messages] == [
        "status",  # on connect, with sid
        "status",
        "status",
        "execution_start",
        "execution_cached",
        "progress_state",
        "executing",
        "progress_state",
        "progress_state",
        "executing",
        "executed",
        "progress_state",
        "execution_success",
        "status",
        "executing",
    ]
    assert messages[0]["data"]["sid"]
    assert messages[-1]["data"] == {"node": None, "prompt_id": prompt_id}
    executed = messages[10]["data"]
    assert executed["output"] == {
        "images": [{"filename": "empty_00001_.png", "subfolder": "apitest", "type": "output"}]
    }
    entry = _history(comfy, prompt_id)
    assert entry["status"]["status_str"] == "success" and entry["status"]["completed"] is True
    assert [m[0] for m in entry["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    assert entry["prompt"][1] == prompt_id and entry["prompt"][3]["client_id"]


def test_an_identical_prompt_is_answered_from_the_cache(comfy):
    _job(comfy, EMPTY_SAVE)
    files = dict(comfy.files)
    messages, prompt_id = _job(comfy, EMPTY_SAVE)
    kinds = [m["type"] for m in messages]
    assert kinds[3:] == [
        "execution_start",
        "execution_cached",
        "executed",
        "progress_state",
        "execution_success",
        "status",
        "executing",
    ]
    assert messages[4]["data"]["nodes"] == ["1", "2"]
    assert comfy.files == files  # no new file
    images = _history(comfy, prompt_id)["outputs"]["2"]["images"]
    assert images == [{"filename": "empty_00001_.png", "subfolder": "apitest", "type": "output"}]


def test_a_prompt_keeps_only_its_own_nodes_in_the_cache(comfy):
    # ComfyUI's default (classic) cache: at the start of each prompt,
    # PromptExecutor.execute sets the prompt's cache keys and calls
    # HierarchicalCache.clean_unused, which drops every output whose key is not
    # one of that prompt's nodes. So A, then B sharing only the EmptyImage, then
    # A again: A's ImageInvert and SaveImage run again, the EmptyImage does not.
    a = {
        "1": EMPTY_SAVE["1"],
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": "apitest/a"},
        },
    }
    b = {
        "1": EMPTY_SAVE["1"],
        "4": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": "apitest/b"},
        },
    }
    _job(comfy, a)
    messages, _ = _job(comfy, b)
    assert _cached(messages) == ["1"]
    messages, prompt_id = _job(comfy, a)
    assert _cached(messages) == ["1"]
    ran = [m["data"]["node"] for m in messages if m["type"] == "executing"]
    assert ran == ["3", "2", None]
    images = _history(comfy, prompt_id)["outputs"]["2"]["images"]
    assert images == [{"filename": "a_00002_.png", "subfolder": "apitest", "type": "output"}]
    # B's nodes are what A just evicted: B runs its SaveImage again.
    messages, _ = _job(comfy, b)
    assert _cached(messages) == ["1"]


def test_nodes_that_ran_before_an_error_stay_cached(comfy):
    # execution.py's execute() caches each node's outputs as soon as it ran;
    # handle_execution_error leaves the cache alone. So after a failure the
    # same prompt runs only from the failed node on.
    graph = {
        "1": EMPTY_SAVE["1"],
        "3": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["3", 0], "filename_prefix": "apitest/a"},
        },
    }
    comfy.script.fail_class = "ImageInvert"
    messages, _ = _job(comfy, graph)
    (error,) = [m["data"] for m in messages if m["type"] == "execution_error"]
    assert error["node_id"] == "3" and error["executed"] == ["1"]
    comfy.script.fail_class = None
    messages, _ = _job(comfy, graph)
    assert _cached(messages) == ["1"]
    assert [m["data"]["node"] for m in messages if m["type"] == "executing"] == ["3", "2", None]


def test_execution_cached_lists_the_prompts_cached_nodes_in_its_key_order(comfy):
    # PromptExecutor.execute builds the list by walking the prompt's keys, not
    # the execution order, and takes every node with a cache entry, also one
    # that no output needs.
    _job(comfy, EMPTY_SAVE)
    graph = {
        "2": EMPTY_SAVE["2"],
        "5": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "1": EMPTY_SAVE["1"],
    }
    messages, _ = _job(comfy, graph)
    assert _cached(messages) == ["2", "1"]
    _job(comfy, {**graph, "6": {"class_type": "PreviewImage", "inputs": {"images": ["5", 0]}}})
    messages, _ = _job(comfy, graph)
    assert _cached(messages) == ["2", "5", "1"]


def test_without_client_id_a_socket_hears_only_status_and_progress(comfy):
    socket = websocket.create_connection(
        f"{comfy.url.replace('http', 'ws')}/ws?clientId=watcher", timeout=5
    )
    prompt_id = post(comfy, {"prompt": EMPTY_SAVE}).json()["prompt_id"]
    _history(comfy, prompt_id)
    time.sleep(0.05)
    socket.settimeout(0.2)
    kinds = set()
    try:
        while True:
            kinds.add(json.loads(socket.recv())["type"])
    except websocket.WebSocketTimeoutException:
        pass
    socket.close()
    assert kinds == {"status", "progress_state"}


def test_history_view_interrupt_and_queue_answers(comfy):
    assert requests.get(f"{comfy.url}/history/unknown", timeout=5).json() == {}
    idle = requests.post(f"{comfy.url}/interrupt", timeout=5)
    assert (idle.status_code, idle.content) == (200, b"")
    assert requests.get(f"{comfy.url}/api/queue", timeout=5).json() == {
        "queue_running": [],
        "queue_pending": [],
    }
    _job(comfy, EMPTY_SAVE)
    view = requests.get(
        f"{comfy.url}/view",
        params={"filename": "empty_00001_.png", "subfolder": "apitest", "type": "output"},
        timeout=5,
    )
    assert view.status_code == 200 and view.headers["Content-Type"] == "image/png"
    assert view.content.startswith(b"\x89PNG")
    for params, status in [
        ({"filename": "nope.png"}, 404),
        ({}, 404),
        ({"filename": "../x.png"}, 400),
        ({"filename": "empty_00001_.png", "subfolder": ".."}, 403),
        ({"filename": "empty_00001_.png", "type": "elsewhere"}, 400),
    ]:
        assert requests.get(f"{comfy.url}/view", params=params, timeout=5).status_code == status


def test_interrupt_with_an_id_stops_only_that_running_prompt(comfy):
    comfy.script.delay_s = 2
    first = post(comfy, {"prompt": EMPTY_SAVE}).json()["prompt_id"]
    graph = json.loads(json.dumps(EMPTY_SAVE))
    graph["1"]["inputs"]["color"] = 1
    second = post(comfy, {"prompt": graph}).json()["prompt_id"]
    queue = _queue_when(comfy, lambda q: q["queue_running"])
    requests.post(f"{comfy.url}/interrupt", json={"prompt_id": second}, timeout=5)  # pending: no-op
    time.sleep(0.05)
    queue = requests.get(f"{comfy.url}/queue", timeout=5).json()
    assert [i[1] for i in queue["queue_running"]] == [first]
    assert [i[1] for i in queue["queue_pending"]] == [second]
    requests.post(f"{comfy.url}/queue", json={"delete": [second]}, timeout=5)
    requests.post(f"{comfy.url}/interrupt", json={"prompt_id": first}, timeout=5)
    entry = _history(comfy, first)
    assert entry["status"]["status_str"] == "error" and entry["outputs"] == {}
    assert entry["status"]["messages"][-1][0] == "execution_interrupted"
    time.sleep(0.1)
    assert requests.get(f"{comfy.url}/history/{second}", timeout=5).json() == {}


# ------------------------------------------------------------------ helpers


def _job(comfy, graph) -> tuple[list[dict], str]:
    client_id = f"c{time.monotonic_ns()}"
    socket = websocket.create_connection(
        f"{comfy.url.replace('http', 'ws')}/ws?clientId={client_id}", timeout=5
    )
    try:
        messages = [json.loads(socket.recv())]  # the greeting
        prompt_id = post(comfy, {"prompt": graph, "client_id": client_id}).json()["prompt_id"]
        while True:
            frame = socket.recv()
            if isinstance(frame, bytes):
                continue
            messages.append(json.loads(frame))
            if _end(messages[-1], prompt_id):
                return messages, prompt_id
    finally:
        socket.close()


def _cached(messages: list[dict]) -> list[str]:
    (cached,) = [m["data"]["nodes"] for m in messages if m["type"] == "execution_cached"]
    return cached


def _queue_when(comfy, condition, timeout: float = 5.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        queue = requests.get(f"{comfy.url}/queue", timeout=5).json()
        if condition(queue):
            return queue
        time.sleep(0.01)
    raise AssertionError("the queue never got there")


def _history(comfy, prompt_id: str, timeout: float = 5.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        entry = requests.get(f"{comfy.url}/history/{prompt_id}", timeout=5).json()
        if entry:
            return entry[prompt_id]
        time.sleep(0.01)
    raise AssertionError(f"no history for {prompt_id}")


def test_loading_another_model_is_charged_once_per_switch(comfy):
    # A GPU holds one model: the fake charges model_switch_s when a prompt's
    # model differs from the previous prompt's (the first load included), as
    # bench/fleet.py needs. The count, not the time, is what is checked here.
    from imagen_comfyui import workflows

    def prompt(name: str, seed: int) -> str:
        template = workflows.load(name)
        values = {**template.meta.defaults, "prompt": "x", "seed": seed, "width": 64, "height": 64}
        body = {"prompt": template.substitute(values)}
        return post(comfy, body).json()["prompt_id"]

    comfy.script.model_switch_s = 0.05
    ids = [prompt(name, seed) for seed, name in enumerate(["flux1-schnell"] * 2 + ["sd35-medium"])]
    ids.append(prompt("flux1-schnell", 9))
    for prompt_id in ids:
        assert _history(comfy, prompt_id, timeout=60)["status"]["status_str"] == "success"
    switched = [pid for _at, kind, pid in comfy.events if kind == "model_switch"]
    assert switched == [ids[0], ids[2], ids[3]] and comfy.model_switches == 3
    assert comfy.loaded == ("flux1-schnell-fp8.safetensors",)
