"""Text no file can hold is refused at the API's door, and one unreadable record
(a sidecar, a job, a ledger row written by an older imagen or by hand) is skipped
by every reader instead of making it answer 500."""

from __future__ import annotations

import json
import sqlite3

from imagen_core import Request
from imagen_core.ledger import default_path
from tests.web.conftest import small


def _post(client, path: str, raw: str):
    return client.post(path, content=raw.encode(), headers={"content-type": "application/json"})


def test_a_lone_surrogate_in_a_body_is_a_400_naming_where(client, output_dir):
    for path in ("/v1/generate", "/v1/jobs"):
        answer = _post(client, path, '{"prompt": "\\ud800x", "width": 8, "height": 8}')
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == {
            "code": "invalid_text",
            "message": "body.prompt: not valid text at character 1 (a lone surrogate escape "
            "such as \\ud800): send UTF-8 text",
        }
        answer = _post(client, path, '{"prompt": "x", "style": "ok\\udc00"}')
        assert answer.status_code == 400 and "body.style: " in answer.text
    # Bytes that are not UTF-8 are not JSON at all.
    answer = client.post(
        "/v1/generate",
        content=b'{"prompt": "caf\xe9"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_json"
    assert not output_dir.exists() or not any(output_dir.rglob("*.png"))
    assert client.get("/v1/jobs").json() == {"jobs": []}


def test_one_unreadable_record_is_skipped_by_every_reader(client, session, output_dir, capsys):
    good = session.generate(Request("fine", width=8, height=8))
    bad = session.generate(Request("spoiled", width=8, height=8))
    # What an older imagen wrote for "\ud800x": a sidecar, a job, a ledger row.
    sidecar = bad.sidecar
    data = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**data, "prompt": "\ud800x"}))
    queue = session.queue()
    job = queue.submit(Request("queued fine"), backend="mock")
    db = sqlite3.connect(queue.path)
    db.execute(
        "UPDATE jobs SET request = ?, error = CAST(X'636166e9' AS TEXT) WHERE id = ?",
        ('{"prompt": "\\ud800x"}', job.id),
    )
    db.commit()
    db.close()
    queue.submit(Request("another"), backend="mock")
    ledger = sqlite3.connect(default_path())
    ledger.execute("UPDATE usage SET error = CAST(X'636166e9' AS TEXT) WHERE id = 2")
    ledger.commit()
    ledger.close()

    images = client.get("/v1/images")
    assert images.status_code == 200
    assert [e["id"] for e in images.json()["images"]] == [session_relative(good.path, output_dir)]
    jobs = client.get("/v1/jobs")
    assert jobs.status_code == 200
    listed = {j["id"]: j for j in jobs.json()["jobs"]}
    assert len(listed) == 2 and listed[job.id]["prompt"] == "(invalid request)"
    usage = client.get("/v1/usage?raw=true")
    assert usage.status_code == 200 and len(usage.json()["rows"]) == 1
    assert client.get("/v1/images").status_code == 200  # and again: reported once
    err = capsys.readouterr().err
    assert err.count("skipped") == 2, err
    assert "images: skipped" in err and "unreadable row" in err


def session_relative(path, root) -> str:
    return str(path.relative_to(root))


def test_small_is_still_accepted(client):
    assert client.post("/v1/generate", json=small()).status_code == 200
