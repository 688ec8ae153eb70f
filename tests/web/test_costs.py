"""Prices and budgets in the API: /v1/backends' price per image and
capabilities, /v1/estimate before a click, /v1/budgets, and every native front
door refusing an over-budget run with 429 and the budget's one line."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from imagen_core import Session
from imagen_web.app import create_app
from tests.helpers import write_config


@pytest.fixture
def paid(isolated_env, output_dir):
    path = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        "queue: {type: sqlite, poll_s: 0.02}\n"
        "budgets: [{period: week, limit_usd: 0.05}]\n"
        "backends: {paid: {type: mock, cost_usd: 0.04}, free: {type: mock}}\n"
        "default_backend: paid\n",
    )
    with TestClient(create_app(Session(path))) as client:
        yield client


def test_backends_show_their_price_per_image_and_capabilities(paid):
    listed = {item["name"]: item for item in paid.get("/v1/backends").json()["backends"]}
    assert listed["paid"]["price"] == {
        "usd": 0.04,
        "basis": "computed",
        "source": "backends.*.cost_usd",
    }
    assert listed["free"]["price"]["basis"] == "free"
    assert listed["paid"]["capabilities"]["text_to_image"] is True
    assert set(listed["paid"]["capabilities"]) == {"text_to_image", "images", "strength", "mask"}


def test_estimate_is_the_price_before_a_click(paid):
    answer = paid.post("/v1/estimate", json={"prompt": "x", "width": 32, "height": 32})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "backend": "paid",
        "usd": 0.04,
        "basis": "computed",
        "source": "backends.*.cost_usd",
    }
    unknown = paid.post("/v1/estimate", json={"prompt": "x", "backend": "nope"})
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_backend"
    assert paid.post("/v1/estimate", json={"width": 32}).status_code == 422


def test_budgets_show_what_is_left(paid):
    assert paid.post("/v1/generate", json={"prompt": "x", "width": 8}).status_code == 200
    (budget,) = paid.get("/v1/budgets").json()["budgets"]
    assert budget["period"] == "week" and budget["limit_usd"] == 0.05
    assert budget["spent_usd"] == pytest.approx(0.04)
    assert budget["remaining_usd"] == pytest.approx(0.01)
    assert budget["resets"].endswith("+00:00")


def test_no_budgets_is_an_empty_list(client):
    assert client.get("/v1/budgets").json() == {"budgets": []}


def test_generate_jobs_and_again_refuse_an_over_budget_run_with_the_same_line(paid):
    first = paid.post("/v1/generate", json={"prompt": "x", "width": 8, "height": 8})
    assert first.status_code == 200, first.text  # $0.04 of $0.05
    generate = paid.post("/v1/generate", json={"prompt": "y", "width": 8})
    job = paid.post("/v1/jobs", json={"prompt": "y", "width": 8})
    again = paid.post("/v1/again", json={"id": first.json()["id"]})
    messages = set()
    for response in (generate, job, again):
        assert response.status_code == 429, response.text
        assert response.headers["x-should-retry"] == "false"
        error = response.json()["error"]
        assert error["code"] == "budget_exceeded"
        assert error["message"].startswith("over budget: ") and "\n" not in error["message"]
        messages.add(error["message"])
    assert len(messages) == 1  # the same one line at every door
    assert paid.get("/v1/jobs").json()["jobs"] == []  # nothing was queued
    (budget,) = paid.get("/v1/budgets").json()["budgets"]
    assert budget["reserved_usd"] == 0  # the submit-time check holds nothing
    # A free backend is not refused by a budget it cannot pass.
    assert paid.post("/v1/jobs", json={"prompt": "y", "backend": "free"}).status_code == 202
