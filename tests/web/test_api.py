"""The /v1 API through Starlette's TestClient: what each route answers, and the
JSON errors with the field named."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from imagen_core import Request
from imagen_core.comparison import compare
from imagen_core.worker import Worker, WorkerOptions
from imagen_web import made, openai_api, openapi
from imagen_web.api import routes
from imagen_web.app import create_app
from tests.web.conftest import small


def test_generate_writes_the_image_and_answers_its_url_seed_latency_cost(client, output_dir):
    response = client.post("/v1/generate", json=small(seed=42, backend="other"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["seed"] == 42 and body["backend"] == "other" and body["model"] == "other-model"
    assert body["cost_usd"] == 0.0 and body["latency_s"] > 0
    path = output_dir / body["id"]
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert body["url"] == f"/images/{body['id']}"
    image = client.get(body["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == path.read_bytes()


def test_generate_applies_the_style_and_picks_a_seed(client, output_dir):
    body = client.post("/v1/generate", json=small("a fox", style="poster")).json()
    sidecar = json.loads((output_dir / body["id"]).with_suffix(".json").read_text())
    assert sidecar["prompt_sent"] == "a poster of a fox" and sidecar["prompt"] == "a fox"
    assert body["seed"] > 0 and sidecar["seed"] == body["seed"]


def test_a_failing_backend_is_a_502_with_its_message(client):
    response = client.post("/v1/generate", json=small(backend="broken"))
    assert response.status_code == 502
    assert response.json() == {
        "error": {
            "code": "backend_failed",
            "message": "mock backend failed as configured: CUDA out of memory",
        }
    }


@pytest.mark.parametrize(
    ("body", "status", "code", "message"),
    [
        ({}, 422, "invalid_body", "prompt: required field missing"),
        ({"prompt": 5}, 422, "invalid_body", "prompt: expected a string, got 5"),
        ({"prompt": "  "}, 422, "invalid_body", "prompt: is empty: describe the image"),
        (
            {"prompt": "x" * 4001},
            422,
            "invalid_body",
            "prompt: is 4001 characters long; the limit is 4000",
        ),
        ({"prompt": "x", "width": "64"}, 422, "invalid_body", "width: expected an integer"),
        ({"prompt": "x", "width": True}, 422, "invalid_body", "width: expected an integer"),
        ({"prompt": "x", "width": 0}, 422, "invalid_body", "width: must be between 1 and 8192"),
        ({"prompt": "x", "seed": -1}, 422, "invalid_body", "seed: must be between 0 and"),
        ({"prompt": "x", "colour": "red"}, 422, "invalid_body", "colour: unknown field"),
        ([1, 2], 422, "invalid_body", "body: expected a JSON object"),
        (
            {"prompt": "x", "backend": "nope"},
            422,
            "unknown_backend",
            "backend: unknown backend 'nope'",
        ),
        ({"prompt": "x", "style": "nope"}, 422, "unknown_style", "style: unknown style 'nope'"),
    ],
)
@pytest.mark.parametrize("route", ["/v1/generate", "/v1/jobs"])
def test_bad_bodies_are_422_naming_the_field(
    client, output_dir, route, body, status, code, message
):
    response = client.post(route, json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"].startswith(message), error
    assert "\n" not in error["message"]
    assert not output_dir.exists() or not any(output_dir.rglob("*.png"))
    assert client.get("/v1/jobs").json() == {"jobs": []}


def test_max_attempts_is_checked_on_jobs(client):
    response = client.post("/v1/jobs", json=small(max_attempts=0))
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "max_attempts: must be between 1 and 100, got 0"


def test_bodies_that_are_not_json(client):
    not_json = client.post(
        "/v1/generate", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400 and not_json.json()["error"]["code"] == "invalid_json"
    # A form post (what another site's page can send without asking) is refused.
    form = client.post("/v1/jobs", data={"prompt": "x"})
    assert form.status_code == 415
    assert form.json()["error"]["code"] == "unsupported_media_type"
    assert client.get("/v1/jobs").json() == {"jobs": []}


def test_bodies_over_64_kib_are_413_whether_announced_or_streamed(client):
    big = json.dumps({"prompt": "x", "negative_prompt": "y" * 70_000}).encode()
    announced = client.post(
        "/v1/images/generations", content=big, headers={"content-type": "application/json"}
    )
    assert announced.status_code == 413
    assert announced.json()["error"]["message"] == "the request body is over 64 KiB"

    def chunks(data):  # no Content-Length: the limit must hold while it streams
        for start in range(0, len(data), 8192):
            yield data[start : start + 8192]

    streamed = client.post(
        "/v1/images/generations", content=chunks(big), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and streamed.json()["error"]["code"] == "body_too_large"


def test_routes_that_take_images_have_the_upload_limit_instead(session):
    with TestClient(create_app(session, max_upload=100 * 1024)) as client:
        fits = json.dumps({"prompt": "x", "negative": "y" * 70_000}).encode()
        response = client.post(
            "/v1/generate", content=fits, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422  # read whole: the negative prompt is too long
        big = json.dumps({"prompt": "x", "negative": "y" * 200_000}).encode()
        for path in ("/v1/generate", "/v1/jobs"):
            announced = client.post(path, content=big, headers={"content-type": "application/json"})
            assert announced.status_code == 413
            assert announced.json()["error"] == {
                "code": "body_too_large",
                "message": "the request body is over 100 KiB",
            }
            streamed = client.post(
                path,
                content=(big[i : i + 8192] for i in range(0, len(big), 8192)),
                headers={"content-type": "application/json"},
            )
            assert streamed.status_code == 413


def test_job_lifecycle_submit_get_list_and_done_by_a_worker(client, session, output_dir):
    response = client.post("/v1/jobs", json=small("a job", seed=7))
    assert response.status_code == 202
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued" and job["backend"] == "mock" and job["image_url"] is None
    assert client.get("/v1/jobs?status=queued").json()["jobs"][0]["id"] == job["id"]
    assert client.get("/v1/jobs?status=done").json() == {"jobs": []}

    Worker(session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.01), log=print).run()

    done = client.get(f"/v1/jobs/{job['id']}").json()
    assert done["status"] == "done" and done["seed"] == 7 and done["model"] == "mock-procedural-v1"
    submitted = dt.datetime.fromisoformat(done["created_at"])
    assert done["image_id"] == f"jobs/{submitted:%Y-%m-%d/%H}/{job['id']}.png"
    assert client.get(done["image_url"]).status_code == 200
    # No absolute path of the server's disk in any answer.
    assert str(output_dir) not in json.dumps(done)
    newest = client.get("/v1/images?limit=1").json()["images"][0]
    assert newest["job"] == job["id"] and newest["url"] == done["image_url"]


def test_cancel_a_queued_job_but_not_a_finished_one(client, session):
    job = client.post("/v1/jobs", json=small()).json()
    canceled = client.delete(f"/v1/jobs/{job['id']}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert client.get(f"/v1/jobs/{job['id']}").json()["status"] == "canceled"
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 200  # DELETE is idempotent
    done = client.post("/v1/jobs", json=small()).json()
    Worker(session, session.queue(), WorkerOptions(once=True, idle_wait_s=0.01), log=print).run()
    refused = client.delete(f"/v1/jobs/{done['id']}")
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "job_finished",
        "message": f"job {done['id']} is already done",
    }
    short = client.post("/v1/jobs", json=small()).json()["id"][:8]
    assert client.get(f"/v1/jobs/{short}").json()["id"].startswith(short)
    assert client.delete(f"/v1/jobs/{short}").json()["status"] == "canceled"
    for method in (client.get, client.delete):
        missing = method("/v1/jobs/not-a-job")
        assert missing.status_code == 404
        assert missing.json()["error"] == {"code": "not_found", "message": "no job 'not-a-job'"}


def test_cancel_answers_by_the_jobs_state_running_failed_canceled(client, session):
    """`DELETE` cancels what is queued or running (200, the job canceled), and
    refuses what is over (409 naming its state; `imagen jobs cancel` agrees)."""
    running = client.post("/v1/jobs", json=small()).json()
    queue = session.queue()
    assert queue.claim("w1", backends=None, lease_s=60).id == running["id"]
    assert client.get(f"/v1/jobs/{running['id']}").json()["status"] == "running"
    answer = client.delete(f"/v1/jobs/{running['id']}")
    assert (answer.status_code, answer.json()["status"]) == (200, "canceled")
    failed = client.post("/v1/jobs", json=small(max_attempts=1)).json()  # no retry
    assert queue.claim("w1", backends=None, lease_s=60).id == failed["id"]
    assert queue.fail(failed["id"], "w1", error="CUDA out of memory")
    refused = client.delete(f"/v1/jobs/{failed['id']}")
    assert refused.status_code == 409
    assert refused.json()["error"]["message"] == f"job {failed['id']} is already failed"
    assert client.get(f"/v1/jobs/{failed['id']}").json()["status"] == "failed"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=finished", "status: must be one of queued, running, done, failed, canceled"),
        ("limit=0", "limit: must be a whole number from 1 to 500"),
        ("limit=abc", "limit: must be a whole number from 1 to 500"),
        ("limit=%C2%B2", "limit: must be a whole number from 1 to 500"),
    ],
)
def test_bad_job_queries_are_422(client, query, field):
    response = client.get(f"/v1/jobs?{query}")
    assert response.status_code == 422
    assert response.json()["error"] == {"code": "invalid_query", "message": field}


def test_backends_lists_names_types_and_styles(client):
    body = client.get("/v1/backends").json()
    assert body["default"] == "mock" and body["styles"] == ["poster"] and body["types"] == ["mock"]
    named = ["name", "type", "default", "available"]
    assert [{key: item[key] for key in named} for item in body["backends"]] == [
        {"name": "mock", "type": "mock", "default": True, "available": True},
        {"name": "other", "type": "mock", "default": False, "available": True},
        {"name": "broken", "type": "mock", "default": False, "available": True},
    ]
    assert {item["price"]["basis"] for item in body["backends"]} == {"free"}


def test_images_lists_sidecars_newest_first_and_pages_stably(client, session):
    for i in range(5):
        session.generate(Request(f"picture {i}", width=16, height=16, seed=i + 1))
    first = client.get("/v1/images?limit=2").json()
    assert [e["prompt"] for e in first["images"]] == ["picture 4", "picture 3"]
    assert first["images"][0]["seed"] == 5 and first["images"][0]["backend"] == "mock"
    # New images arrive between two pages: the next page goes on where the first ended.
    session.generate(Request("newcomer", width=16, height=16, seed=99))
    second = client.get(f"/v1/images?limit=2&cursor={first['next_cursor']}").json()
    assert [e["prompt"] for e in second["images"]] == ["picture 2", "picture 1"]
    third = client.get(f"/v1/images?limit=2&cursor={second['next_cursor']}").json()
    assert [e["prompt"] for e in third["images"]] == ["picture 0"]
    assert third["next_cursor"] is None
    assert client.get("/v1/images?limit=1").json()["images"][0]["prompt"] == "newcomer"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("cursor=garbage", "cursor: not a cursor this server gave out"),
        ("cursor=WzEsMiwzXQ", "cursor: not a cursor this server gave out"),  # [1,2,3]
        ("limit=201", "limit: must be a whole number from 1 to 200"),
    ],
)
def test_bad_image_queries_are_422(client, query, message):
    response = client.get(f"/v1/images?{query}")
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith(message)


def test_a_compare_run_is_one_entry_with_its_contact_sheet_and_tiles(client, session):
    session.generate(Request("alone", width=16, height=16))
    run = compare(
        Request("a duel", width=32, height=32, seed=3), ["mock", "broken"], session=session
    )
    entries = client.get("/v1/images").json()["images"]
    assert [e["kind"] for e in entries] == ["compare", "image"]  # tiles are not entries
    entry = entries[0]
    assert entry["prompt"] == "a duel" and entry["seed"] == 3
    assert entry["url"].endswith("/contact-sheet.png")
    sheet = client.get(entry["url"])
    assert sheet.status_code == 200 and sheet.content == run.sheet.read_bytes()
    ok, failed = entry["tiles"]
    assert (ok["backend"], ok["status"], ok["seed"]) == ("mock", "ok", 3)
    assert client.get(ok["url"]).status_code == 200
    assert failed["status"] == "failed" and "CUDA out of memory" in failed["error"]
    assert failed["url"] is None


def test_usage_reports_the_ledger_by_week_with_since(client, session):
    session.generate(Request("one", width=16, height=16))
    with pytest.raises(Exception, match="CUDA"):
        session.generate(Request("two", width=16, height=16, backend="broken"))
    today = dt.datetime.now(dt.timezone.utc).date()
    body = client.get(f"/v1/usage?since={today}").json()
    assert body["total"] == {"count": 2, "failed": 1, "cost_usd": 0.0}
    assert {(w["backend"], w["count"], w["failed"]) for w in body["weeks"]} == {
        ("mock", 1, 0),
        ("broken", 1, 1),
    }
    assert "rows" not in body
    raw = client.get("/v1/usage?raw=true").json()
    assert len(raw["rows"]) == 2 and all("prompt_sha256" in r for r in raw["rows"])
    assert "one" not in json.dumps(raw)  # prompts never leave the ledger
    tomorrow = today + dt.timedelta(days=1)
    assert client.get(f"/v1/usage?since={tomorrow}").json()["total"]["count"] == 0
    bad = client.get("/v1/usage?since=yesterday")
    assert bad.status_code == 422
    assert bad.json()["error"]["message"] == "since: 'yesterday' is not a date like 2026-05-01"
    backwards = client.get(f"/v1/usage?since={today}&until={today - dt.timedelta(days=1)}")
    assert backwards.json()["error"]["message"] == "until: is before since"


def test_unknown_paths_and_methods_are_json_errors(client):
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong = client.put("/v1/jobs")
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"
    # Under OpenAI's routes, in OpenAI's envelope (its SDK reads type, param and code).
    for response in (client.get("/v1/images/generations"), client.get("/v1/images/nothing")):
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["type"] == "invalid_request_error" and error["param"] is None
    assert client.get("/v1/images/generations").status_code == 405


def test_every_route_is_in_the_openapi_document_and_back():
    documented = {
        (path, method.upper())
        for path, operations in openapi.document()["paths"].items()
        for method in operations
    }
    served = {
        (route.path, method)
        for route in [*routes(), *made.routes(), *openai_api.routes()]
        for method in route.methods or ()
    }
    served = {(p, m) for p, m in served if m != "HEAD"} | {("/images/{path}", "GET")}
    assert documented == served


def test_the_document_is_served_and_its_references_resolve(client):
    doc = client.get("/v1/openapi.json").json()
    assert doc["openapi"] == "3.1.0" and doc == openapi.document()
    refs = {ref.rsplit("/", 1)[1] for ref in re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc))}
    assert refs <= set(doc["components"]["schemas"])  # no dangling reference


def test_gallery_page_and_its_assets_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200


def test_images_are_served_whole(client, output_dir):
    body = client.post("/v1/generate", json=small(width=48, height=24)).json()
    import io

    with Image.open(io.BytesIO(client.get(body["url"]).content)) as image:
        assert image.size == (48, 24)
    assert Path(output_dir / body["id"]).stat().st_size > 0


def test_a_grid_run_is_one_entry_and_its_page_runs_only_its_own_script(client, session):
    import base64
    import hashlib
    import re

    from imagen_core.grid import parse_axis, run_grid

    run = run_grid(
        Request("a grid", width=16, height=16),
        [parse_axis("seed=1,2"), parse_axis("backend=mock,broken")],
        session=session,
    )
    entries = client.get("/v1/images").json()["images"]
    assert [e["kind"] for e in entries] == ["grid"]  # its cells are not entries
    entry = entries[0]
    assert entry["prompt"] == "a grid" and entry["cells"] == 4
    assert entry["axes"] == ["x: seed", "y: backend"]
    assert entry["url"].endswith("/grid.png") and entry["page"].endswith("/grid.html")
    assert client.get(entry["url"]).content == run.sheets[0].read_bytes()
    page = client.get(entry["page"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "img-src 'self'" in policy
    script = re.findall(r"<script>(.*?)</script>", page.text, re.S)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}';" in policy
    # Its images resolve next to it, under /images/.
    cell = next(c for c in run.record.cells if c.image)
    assert client.get(entry["page"].rsplit("/", 1)[0] + "/" + cell.image).status_code == 200
    # Only a grid run's page is served: not any html, not outside output.dir.
    assert client.get("/images/nowhere/grid.html").status_code == 404
    assert client.get("/images/../grid.html").status_code == 404


def test_a_hostile_grid_json_is_an_entry_without_500s(client, session, output_dir):
    folder = output_dir / "2026-11-28" / "000000-x-grid"
    folder.mkdir(parents=True)
    (folder / "grid.json").write_text(
        '{"kind": "grid", "prompt": "x", "sheets": "grid.png", "axes": [1, {"role": 2}],'
        ' "totals": {"cost_usd": NaN, "latency_s": "slow"}, "base": [], "html": "../x.html"}'
    )
    response = client.get("/v1/images")
    assert response.status_code == 200
    (entry,) = response.json()["images"]
    assert entry["kind"] == "grid" and entry["url"] is None and entry["page"] is None
    assert entry["cost_usd"] is None and entry["latency_s"] is None
    assert entry["axes"] == []
    assert client.get("/images/2026-11-28/000000-x-grid/grid.html").status_code == 404
