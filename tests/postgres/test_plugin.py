"""imagen-postgres as a plugin: registered through the hook, configured by the
queue: block (which never holds the connection string), cheap to import, and
shipping its SQL file in the wheel."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from imagen_core import Session
from imagen_core.cli import main
from imagen_core.errors import ConfigError
from imagen_core.registry import collect
from imagen_postgres.queue import PostgresQueue
from imagen_postgres.settings import PostgresQueueConfig
from tests.helpers import build_wheels, write_config

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "plugins" / "imagen-postgres"


def test_the_plugin_registers_the_postgres_queue_type(plugin):
    registration = collect(plugin).queues["postgres"]
    assert registration.config is PostgresQueueConfig
    assert "postgres" in registration.owner


def test_the_block_builds_a_queue_without_connecting(plugin, isolated_env):
    # No IMAGEN_DATABASE_URL: building must not need it, only using the queue does.
    write_config(isolated_env, "queue: {type: postgres, schema: jobs_dev, connect_timeout_s: 3}\n")
    queue = Session().queue()
    assert isinstance(queue, PostgresQueue)
    assert queue.config == PostgresQueueConfig(schema="jobs_dev", connect_timeout_s=3.0)
    assert PostgresQueueConfig() == PostgresQueueConfig(
        dsn_env="IMAGEN_DATABASE_URL", schema="imagen", connect_timeout_s=10.0
    )


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        ("{type: postgres, schema: Jobs}", "schema must be a plain lower-case SQL name"),
        ("{type: postgres, schema: " + "a" * 59 + "}", "at most 58 characters"),
        ("{type: postgres, connect_timeout_s: 0}", "connect_timeout_s must be more than 0"),
        ("{type: postgres, dsn_env: 'IMAGEN URL'}", "dsn_env must name an environment variable"),
    ],
)
def test_bad_keys_are_config_errors(plugin, isolated_env, block, expected):
    write_config(isolated_env, f"queue: {block}\n")
    with pytest.raises(ConfigError, match=expected):
        Session().queue()


@pytest.mark.parametrize("key", ["dsn_env", "dsn"])
def test_a_connection_string_pasted_into_the_file_is_not_echoed(plugin, isolated_env, capsys, key):
    secret = "postgresql://imagen:hunter2-Tr0ub4dor@db.example.com:5432/jobs"
    write_config(isolated_env, f"queue: {{type: postgres, {key}: '{secret}'}}\n")
    with pytest.raises(SystemExit) as info:
        main(["config", "validate"])
    err = capsys.readouterr().err
    assert info.value.code != 0 and key in err and "queue" in err
    assert "hunter2" not in err


def test_the_sample_config_passes_with_the_plugin(plugin, isolated_env, capsys):
    with pytest.raises(SystemExit):
        main(["config", "init"])
    sample = capsys.readouterr().out
    assert "postgres" in sample
    path = write_config(isolated_env, sample)
    with pytest.raises(SystemExit) as info:
        main(["config", "validate", "--config", str(path)])
    assert info.value.code == 0


PROBE = """
import json, sys
import imagen_postgres
after_import = sorted(m for m in ("psycopg", "attrs") if m in sys.modules)
from imagen_core.plugins import create_plugin_manager
from imagen_core.registry import collect
pm = create_plugin_manager(entry_points=False)
pm.register(imagen_postgres, name="postgres")
collect(pm)
after_register = sorted(m for m in ("psycopg",) if m in sys.modules)
print(json.dumps([after_import, after_register]))
"""


def test_importing_and_registering_is_cheap():
    proc = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    after_import, after_register = json.loads(proc.stdout)
    assert after_import == []  # imagen --help loads the plugin: nothing heavy
    assert after_register == []  # psycopg waits until a queue is built


@pytest.mark.slow
def test_the_wheel_ships_the_sql_file(tmp_path):
    build_wheels(tmp_path, PLUGIN)
    [wheel] = tmp_path.glob("imagen_postgres-0.1.0-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt")))
    assert "imagen_postgres/schema.sql" in names and "imagen_postgres/py.typed" in names
    assert "Requires-Dist: imagen-core==0.1.0" in metadata
    assert "Requires-Dist: psycopg[binary]>=3.2" in metadata
    assert b"[imagen]\npostgres = imagen_postgres" in entry_points
