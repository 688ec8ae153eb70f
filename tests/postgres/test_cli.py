"""The postgres queue through the command line: `imagen queue init`, `submit`,
`jobs` and `worker --once`, as a person runs them, and its errors as one line."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from tests.helpers import job_image, run_cli, write_config
from tests.postgres.conftest import PASSWORD

SECRET = "hunter2-Tr0ub4dor"


@pytest.fixture
def configured(plugin, isolated_env, schema, make_queue, dsn):
    # make_queue: drops the test's schema at the end, whoever created it.
    write_config(
        isolated_env,
        f"queue: {{type: postgres, schema: {schema}}}\nbackends:\n  mock: {{type: mock}}\n",
    )


def test_init_submit_work_and_list(configured, capsys, output_dir):
    assert run_cli(capsys, "queue", "init") == (0, "queue (postgres) ready\n", "")
    assert run_cli(capsys, "queue", "init")[0] == 0  # again: nothing to do
    code, out, err = run_cli(capsys, "submit", "a fox", "--backend", "mock", "--size", "32x16")
    assert code == 0, err
    job_id = out.strip()
    code, out, _ = run_cli(capsys, "jobs", "--json")
    [listed] = json.loads(out)
    assert (listed["id"], listed["status"], listed["backend"]) == (job_id, "queued", "mock")
    assert listed["request"]["width"] == 32
    code, out, err = run_cli(capsys, "worker", "--once")
    assert code == 0 and job_id[:8] in err and "done" in err
    code, out, _ = run_cli(capsys, "jobs", "show", job_id)
    shown = json.loads(out)
    assert shown["status"] == "done" and shown["attempts"] == 1
    submitted = dt.datetime.fromisoformat(shown["created_at"])
    assert Path(shown["result_path"]) == job_image(output_dir, job_id, submitted)
    assert Path(shown["result_path"]).read_bytes().startswith(b"\x89PNG")


def test_an_unset_variable_is_a_usage_error(configured, capsys, monkeypatch):
    monkeypatch.delenv("IMAGEN_DATABASE_URL")
    code, out, err = run_cli(capsys, "jobs")
    assert (code, out) == (2, "")
    assert err == "imagen: set IMAGEN_DATABASE_URL in the environment (named by queue.dsn_env)\n"


@pytest.mark.parametrize("debug", [False, True])
def test_an_unreachable_database_is_one_line_without_the_password(
    configured, capsys, monkeypatch, debug
):
    value = f"postgresql://imagen:{SECRET}@127.0.0.1:1/jobs?connect_timeout=2"
    monkeypatch.setenv("IMAGEN_DATABASE_URL", value)
    args = ["jobs", "--debug"] if debug else ["jobs"]
    code, out, err = run_cli(capsys, *args)
    assert code == 1 and out == ""
    assert "imagen: cannot use the PostgreSQL queue (IMAGEN_DATABASE_URL): " in err
    assert SECRET not in err and value not in err and PASSWORD not in err
    if not debug:
        assert err.count("\n") == 1


def test_a_bad_schema_name_is_a_config_error(plugin, isolated_env, capsys):
    write_config(isolated_env, "queue: {type: postgres, schema: 'jobs; drop table x'}\n")
    code, _, err = run_cli(capsys, "queue", "init")
    assert code == 2 and "queue: schema must be a plain lower-case SQL name" in err
