"""The SQL of ``imagen supabase schema`` (imagen_supabase/supabase.sql, shipped in
the package) on a real PostgreSQL: it applies (twice, the second time piped from
the command as the docs say), its columns are exactly what the sink sends, the sink's rows insert as service_role (once, however
often retried), and row-level security lets owners, and only owners, read.

Supabase's own pieces are stood in for by the minimum the file relies on: the API
roles, ``auth.users``, ``auth.uid()`` (read from the JWT claims PostgREST sets,
as Supabase's is) and the ``storage`` tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.pgserver import PostgresError, PostgresServer
from tests.supabase.fake import TABLES, FakeSupabase
from tests.supabase.util import OWNER, make, supabase_config

SQL = Path(__file__).resolve().parents[2] / "plugins/imagen-supabase/imagen_supabase/supabase.sql"
OTHER_USER = "9a0c4a52-6d43-4f4b-9d43-0e4d6f1b2a10"

SUPABASE_STAND_IN = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END $$;

CREATE SCHEMA auth;
CREATE TABLE auth.users (id uuid PRIMARY KEY);
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT nullif(
        coalesce(
            current_setting('request.jwt.claim.sub', true),
            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub'
        ),
        ''
    )::uuid
$$;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

CREATE SCHEMA storage;
CREATE TABLE storage.buckets (
    id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    owner uuid,
    public boolean DEFAULT false,
    file_size_limit bigint,
    allowed_mime_types text[],
    created_at timestamptz DEFAULT now(),
    updated_at timestamptz DEFAULT now()
);
CREATE TABLE storage.objects (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    bucket_id text REFERENCES storage.buckets (id),
    name text,
    owner uuid,
    created_at timestamptz DEFAULT now(),
    UNIQUE (bucket_id, name)
);
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
GRANT USAGE ON SCHEMA storage TO anon, authenticated, service_role;
GRANT ALL ON storage.objects TO authenticated, service_role;
"""


@pytest.fixture(scope="module")
def database(postgres: PostgresServer) -> str:
    name = postgres.create_database("imagen_supabase_sql")
    postgres.psql(SUPABASE_STAND_IN, database=name)
    postgres.psql(file=SQL, database=name)
    postgres.psql(f"INSERT INTO auth.users VALUES ('{OWNER}'), ('{OTHER_USER}')", database=name)
    return name


@pytest.fixture(autouse=True)
def empty_tables(postgres: PostgresServer, database: str) -> None:
    postgres.psql(
        "TRUNCATE imagen.images, mai.imagen_usage; DELETE FROM storage.objects", database=database
    )


@pytest.fixture
def sent(
    plugin: Any, fake: FakeSupabase, credentials: str, isolated_env: Path
) -> dict[str, list[dict[str, Any]]]:
    """The bodies the sink really sent for one success and one failure."""
    supabase_config(isolated_env)
    with open(isolated_env / ".config" / "imagen.yaml", "a") as config:
        config.write("backends:\n  broken: {type: mock, fail: no GPU}\n")
    make()
    from imagen_core import BackendError, Request, generate

    with pytest.raises(BackendError):
        generate(Request("a fox", backend="broken", width=16, height=16))
    return {
        "images": [r.json() for r in fake.requests_to("POST /rest/v1/images")],
        "imagen_usage": [r.json() for r in fake.requests_to("POST /rest/v1/imagen_usage")],
    }


def columns(postgres: PostgresServer, database: str, schema: str, table: str) -> dict[str, str]:
    out = postgres.psql(
        "SELECT column_name || '|' || is_nullable || '|' || coalesce(column_default, '') "
        "FROM information_schema.columns "
        f"WHERE table_schema = '{schema}' AND table_name = '{table}' ORDER BY ordinal_position",
        database=database,
    )
    found = {}
    for line in out.splitlines():
        name, nullable, default = line.split("|", 2)
        found[name] = "required" if nullable == "NO" and not default else "optional"
    return found


def insert_as_service_role(
    postgres: PostgresServer, database: str, table: str, body: dict[str, Any]
) -> None:
    """What PostgREST runs for the sink's POST (return=minimal,
    resolution=ignore-duplicates, on_conflict=id), under the role the key maps to."""
    postgres.psql(
        f"""
        BEGIN;
        SET LOCAL ROLE service_role;
        INSERT INTO {table}
            SELECT * FROM json_populate_record(NULL::{table}, :'body'::json)
            ON CONFLICT (id) DO NOTHING;
        COMMIT;
        """,
        database=database,
        variables={"body": json.dumps(body)},
    )


def as_user(postgres: PostgresServer, database: str, role: str, sub: str, sql: str) -> str:
    claims = json.dumps({"sub": sub, "role": role})
    return postgres.psql(
        f"BEGIN; SET LOCAL ROLE {role}; SET LOCAL request.jwt.claims = :'claims'; {sql}; COMMIT;",
        database=database,
        variables={"claims": claims},
    )


def test_applies_again_from_the_command_without_error(
    postgres: PostgresServer, database: str, plugin, capsys: pytest.CaptureFixture[str]
) -> None:
    from imagen_core.cli import main

    with pytest.raises(SystemExit) as info:
        main(["supabase", "schema"])
    printed = capsys.readouterr().out
    assert info.value.code == 0 and printed == SQL.read_text()
    postgres.psql(printed, database=database)  # imagen supabase schema | psql
    bucket = postgres.psql(
        "SELECT public, allowed_mime_types FROM storage.buckets WHERE id = 'imagen-generated'",
        database=database,
    )
    assert bucket == "f|{image/png,image/jpeg,image/webp}"


@pytest.mark.parametrize(("schema", "table"), [("imagen", "images"), ("mai", "imagen_usage")])
def test_columns_are_what_the_sink_sends(
    postgres: PostgresServer,
    database: str,
    sent: dict[str, list[dict[str, Any]]],
    schema: str,
    table: str,
) -> None:
    found = columns(postgres, database, schema, table)
    assert found, f"{schema}.{table} missing"
    for body in sent[table]:
        assert set(body) == set(found)
    # ... and the fake Supabase the other tests use has the same table.
    spec = TABLES[schema, table]
    assert list(spec.columns) == list(found)
    assert spec.not_null == {c for c, kind in found.items() if kind == "required"}


def test_sink_rows_insert_once_as_service_role(
    postgres: PostgresServer, database: str, sent: dict[str, list[dict[str, Any]]]
) -> None:
    for table, key in (("imagen.images", "images"), ("mai.imagen_usage", "imagen_usage")):
        for body in sent[key]:
            insert_as_service_role(postgres, database, table, body)
            insert_as_service_role(postgres, database, table, body)  # a retry
            count = postgres.psql(
                f"SELECT count(*) FROM {table} WHERE id = '{body['id']}'", database=database
            )
            assert count == "1"
    image = sent["images"][0]
    stored = postgres.psql(
        "SELECT seed, steps, tags, sidecar ->> 'prompt', owner_user_id FROM imagen.images "
        f"WHERE id = '{image['id']}'",
        database=database,
    )
    assert stored == f"7|8|{{}}|{image['prompt']}|{OWNER}"
    failed = [b for b in sent["imagen_usage"] if b["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["model"] is None


def test_row_level_security(
    postgres: PostgresServer, database: str, sent: dict[str, list[dict[str, Any]]]
) -> None:
    image = sent["images"][0]
    insert_as_service_role(postgres, database, "imagen.images", image)
    for body in sent["imagen_usage"]:
        insert_as_service_role(postgres, database, "mai.imagen_usage", body)
    postgres.psql(
        "INSERT INTO storage.objects (bucket_id, name) "
        f"VALUES ('imagen-generated', '{image['storage_path']}') ON CONFLICT DO NOTHING",
        database=database,
    )
    mine = f"SELECT count(*) FROM imagen.images WHERE id = '{image['id']}'"
    assert as_user(postgres, database, "authenticated", OWNER, mine) == "1"
    assert as_user(postgres, database, "authenticated", OTHER_USER, mine) == "0"
    # The owner's object in the private bucket: readable by the owner only.
    objects = f"SELECT count(*) FROM storage.objects WHERE name = '{image['storage_path']}'"
    assert as_user(postgres, database, "authenticated", OWNER, objects) == "1"
    assert as_user(postgres, database, "authenticated", OTHER_USER, objects) == "0"
    # The viewer may tag its own images, and change nothing else.
    tag = f"UPDATE imagen.images SET tags = '{{fox}}' WHERE id = '{image['id']}' RETURNING tags"
    assert as_user(postgres, database, "authenticated", OWNER, tag) == "{fox}"
    assert as_user(postgres, database, "authenticated", OTHER_USER, tag) == ""
    with pytest.raises(PostgresError, match="permission denied"):
        as_user(
            postgres,
            database,
            "authenticated",
            OWNER,
            f"UPDATE imagen.images SET prompt = 'x' WHERE id = '{image['id']}'",
        )
    # Usage rows and anonymous callers: no access at all.
    with pytest.raises(PostgresError, match="permission denied"):
        as_user(postgres, database, "authenticated", OWNER, "SELECT count(*) FROM mai.imagen_usage")
    with pytest.raises(PostgresError, match="permission denied"):
        as_user(postgres, database, "anon", OWNER, "SELECT count(*) FROM imagen.images")
    count = postgres.psql(
        "BEGIN; SET LOCAL ROLE service_role; SELECT count(*) FROM mai.imagen_usage; COMMIT;",
        database=database,
    )
    assert int(count) >= 2


def test_missing_postgres_fails_with_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests import pgserver

    monkeypatch.setattr(pgserver, "find_bindir", lambda: None)
    with pytest.raises(PostgresError, match=r"apt-get install -y postgresql postgresql-client"):
        pgserver.start_postgres()
