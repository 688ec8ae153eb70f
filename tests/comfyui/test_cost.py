"""A local GPU has a price too: gpu_usd_per_hour times ComfyUI's own execution
time (from its execution_start/execution_success timestamps, not queue wait)."""

from __future__ import annotations

import json

from imagen_core import Request, Session


def test_gpu_time_is_priced_by_the_servers_execution_time(comfy, configure) -> None:
    configure("gpu_usd_per_hour: 36")  # one cent a second
    comfy.script.delay_s = 0.3
    session = Session()
    before = session.estimate(Request("a cat"))
    assert before.usd is None and "no run recorded yet" in before.source
    made = session.generate(Request("a cat", width=64, height=64))
    result = made.result
    assert result is not None
    ran = result.metadata["execution_s"]
    # The fake's execution took at least its scripted work, and less than the call.
    assert 0.3 <= ran <= result.latency_s
    assert (result.cost_usd, result.cost_basis) == (round(ran * 0.01, 6), "estimated")
    sidecar = json.loads(made.sidecar.read_text())  # type: ignore[union-attr]
    assert sidecar["cost_basis"] == "estimated"
    after = session.estimate(Request("a cat"))
    assert after.basis == "estimated" and after.usd is not None and after.usd > 0


def test_without_a_rate_a_local_image_is_free(comfy, configure) -> None:
    configure()
    result = Session().generate(Request("a cat", width=64, height=64)).result
    assert result is not None
    assert (result.cost_usd, result.cost_basis) == (0.0, "computed")
    assert result.metadata["execution_s"] is not None


def test_the_fingerprint_names_the_server_the_workflow_and_its_models(comfy, configure) -> None:
    configure()
    made = Session().generate(Request("a cat", width=64, height=64))
    sidecar = json.loads(made.sidecar.read_text())  # type: ignore[union-attr]
    printed = sidecar["metadata"]["fingerprint"]
    stats = comfy.system_stats_body()
    assert printed["comfyui"] == stats["system"]["comfyui_version"]
    assert printed["pytorch"] == stats["system"]["pytorch_version"]
    assert printed["device"] == stats["devices"][0]["name"]
    assert printed["models"] == ["flux1-schnell-fp8.safetensors"]
    assert len(printed["workflow_sha256"]) == 64
    assert printed["plugin"]  # the backend plugin's distribution and version
    # Asked once per backend, not per image.
    Session().generate(Request("a dog", width=64, height=64))
    assert len(comfy.seen("GET", "/system_stats")) == 2  # one per Session
