"""Input that made the API answer 500: each is now a 4xx, or a valid answer."""

from __future__ import annotations

import json
import math

import pytest

from imagen_core import Request
from tests.web.conftest import small


@pytest.mark.parametrize("depth", [100, 900, 5_000, 30_000])
@pytest.mark.parametrize("path", ["/v1/generate", "/v1/jobs"])
def test_deeply_nested_json_is_a_4xx(client, path, depth):
    for body in ("[" * depth + "]" * depth, '{"prompt": ' + "[" * depth + "]" * depth + "}"):
        response = client.post(path, content=body, headers={"content-type": "application/json"})
        assert response.status_code in (400, 422), (depth, response.text[:200])
        if response.status_code == 400:
            assert response.json()["error"] == {
                "code": "invalid_json",
                "message": "body: JSON nested too deeply",
            }


def test_usage_over_every_date_there_is(client, session):
    session.generate(Request("one", width=16, height=16))
    answer = client.get("/v1/usage?since=0001-01-01&until=9999-12-31")
    assert answer.status_code == 200
    assert answer.json()["total"]["count"] == 1
    assert answer.json()["until"] == "9999-12-31"


def test_a_sidecar_with_nan_does_not_break_the_image_list(client, session, output_dir):
    session.generate(Request("fine", width=16, height=16))
    made = session.generate(Request("odd numbers", width=16, height=16))
    assert made.path is not None
    sidecar = made.path.with_suffix(".json")
    data = json.loads(sidecar.read_text())
    data.update(latency_s=math.nan, cost_usd=math.inf, seed=-math.inf)
    sidecar.write_text(json.dumps(data))  # what Python's json.dump writes: NaN, Infinity
    compare = output_dir / "run-compare"
    compare.mkdir()
    (compare / "compare.json").write_text(
        json.dumps(
            {
                "prompt": "tiles",
                "backends": [{"name": "mock", "status": "ok", "latency_s": math.nan}],
                "settings": {"width": math.inf},
            }
        )
    )
    answer = client.get("/v1/images")
    assert answer.status_code == 200
    entries = {entry["prompt"]: entry for entry in answer.json()["images"]}
    assert set(entries) == {"fine", "odd numbers", "tiles"}
    odd = entries["odd numbers"]
    assert (odd["latency_s"], odd["cost_usd"], odd["seed"]) == (None, None, None)
    assert entries["tiles"]["tiles"][0]["latency_s"] is None
    assert entries["tiles"]["latency_s"] is None and entries["tiles"]["width"] is None


def test_a_job_with_nan_in_its_result_is_listed(client, session):
    job = client.post("/v1/jobs", json=small()).json()
    queue = session.queue()
    claimed = queue.claim("w1", backends=None, lease_s=60)
    assert claimed is not None and claimed.id == job["id"]
    queue.complete(
        job["id"], "w1", result_path="x.png", metadata={"latency_s": math.nan, "cost_usd": 1e400}
    )
    for path in ("/v1/jobs", f"/v1/jobs/{job['id']}"):
        answer = client.get(path)
        assert answer.status_code == 200, path
    shown = client.get(f"/v1/jobs/{job['id']}").json()
    assert (shown["status"], shown["latency_s"], shown["cost_usd"]) == ("done", None, None)
