"""What goes wrong, said in one line that names the fix and never the secret:
neither the connection string nor its password appears in a message, a repr or a
traceback, whatever the failure."""

from __future__ import annotations

import traceback
from urllib.parse import quote

import pytest

from imagen_core.errors import ImagenError, MissingEnvError, UsageError
from imagen_core.models import Request
from imagen_postgres.connection import QueueDatabaseError, QueueUnavailable
from tests.postgres.conftest import PASSWORD, ROLE

SECRET = "hunter2-Tr0ub4dor"


def shown(exc: BaseException) -> str:
    """Everything a person could see of an error: its text and the traceback
    that --debug prints (with any exception it was raised from)."""
    return str(exc) + "".join(traceback.format_exception(exc))


def assert_no_secret(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text
        assert quote(secret, safe="") not in text


def test_an_unset_variable_names_itself_and_the_key(make_queue, monkeypatch):
    monkeypatch.delenv("IMAGEN_DATABASE_URL")
    with pytest.raises(MissingEnvError) as info:
        make_queue().list()
    assert str(info.value) == "set IMAGEN_DATABASE_URL in the environment (named by queue.dsn_env)"
    monkeypatch.setenv("IMAGEN_DATABASE_URL", "")
    with pytest.raises(MissingEnvError):
        make_queue().list()


def test_the_block_names_another_variable(make_queue, monkeypatch, dsn):
    with pytest.raises(MissingEnvError, match="set JOBS_DB in the environment"):
        make_queue(dsn_env="JOBS_DB").list()
    monkeypatch.setenv("JOBS_DB", dsn)
    queue = make_queue(dsn_env="JOBS_DB")
    queue.init()
    assert queue.list() == []


def test_a_malformed_connection_string_is_not_quoted(make_queue, monkeypatch):
    value = f"host=db.example.com password={SECRET} oops"
    monkeypatch.setenv("IMAGEN_DATABASE_URL", value)
    with pytest.raises(UsageError) as info:
        make_queue().list()
    assert "IMAGEN_DATABASE_URL does not hold a PostgreSQL connection string" in str(info.value)
    assert "postgresql://user:password@host:5432/dbname" in str(info.value)
    assert_no_secret(shown(info.value), SECRET, value)


def test_connection_refused(make_queue, monkeypatch):
    value = f"postgresql://imagen:{SECRET}@127.0.0.1:1/jobs?connect_timeout=2"
    monkeypatch.setenv("IMAGEN_DATABASE_URL", value)
    with pytest.raises(QueueUnavailable) as info:
        make_queue().submit(Request("x"), backend="mock")
    message = str(info.value)
    assert message.startswith("cannot use the PostgreSQL queue (IMAGEN_DATABASE_URL): ")
    assert "refused" in message.lower() and "\n" not in message
    assert_no_secret(shown(info.value), SECRET, value)


def test_a_wrong_password(make_queue, monkeypatch, postgres, database):
    value = postgres.dsn(database, ROLE, SECRET)
    monkeypatch.setenv("IMAGEN_DATABASE_URL", value)
    with pytest.raises(QueueUnavailable) as info:
        make_queue().list()
    assert f'password authentication failed for user "{ROLE}"' in str(info.value)
    assert_no_secret(shown(info.value), SECRET, value, PASSWORD)


def test_an_unknown_database(make_queue, monkeypatch, postgres):
    value = postgres.dsn("no_such_db", ROLE, PASSWORD)
    monkeypatch.setenv("IMAGEN_DATABASE_URL", value)
    with pytest.raises(QueueUnavailable, match='database "no_such_db" does not exist') as info:
        make_queue().list()
    assert_no_secret(shown(info.value), PASSWORD, value)


def test_a_queue_that_was_never_initialised(make_queue):
    with pytest.raises(UsageError, match=r"t_\w+\.jobs does not exist: run `imagen queue init`"):
        make_queue().submit(Request("x"), backend="mock")


def test_a_lost_connection_is_reported_then_replaced(queue, sql, dsn):
    job = queue.submit(Request("x"), backend="mock")
    sql("SELECT pg_terminate_backend(%s)", (queue._conn.info.backend_pid,))
    with pytest.raises(QueueUnavailable) as info:
        queue.get(job.id)
    assert_no_secret(shown(info.value), PASSWORD, dsn)
    assert queue.get(job.id).id == job.id  # the next call connects again


def test_a_refused_statement_names_the_rule_and_the_fix(queue, sql, schema):
    # A table older than this imagen, whose rules reject what imagen now sends.
    sql(
        f"CREATE OR REPLACE FUNCTION {schema}.valid_request(r jsonb) RETURNS boolean "
        "LANGUAGE sql IMMUTABLE AS 'SELECT NOT r ? ''steps'''"
    )
    with pytest.raises(QueueDatabaseError) as info:
        queue.submit(Request("x"), backend="mock")
    assert "jobs_request_valid" in str(info.value)
    assert "run `imagen queue init`" in str(info.value)
    queue.init()  # puts the current rules back
    assert queue.submit(Request("x"), backend="mock").status == "queued"


def test_errors_are_imagen_errors_with_exit_code_1(queue):
    assert issubclass(QueueUnavailable, ImagenError) and QueueUnavailable.exit_code == 1
    assert QueueDatabaseError.exit_code == 1


def test_redaction_covers_both_spellings_of_the_password(queue, dsn):
    # Should a server or a library ever echo the string, the message is scrubbed.
    echoed = Exception(f"bad: {dsn} / {PASSWORD} / {quote(PASSWORD, safe='')}")
    text = queue._database.describe(echoed)
    assert_no_secret(text, dsn, PASSWORD)
    assert text.count("***") == 3


def test_init_without_the_privilege_says_so_and_leaves_the_connection_usable(
    make_queue, postgres, database, monkeypatch
):
    postgres.execute(
        "DROP ROLE IF EXISTS imagen_weak; CREATE ROLE imagen_weak LOGIN PASSWORD 'weak-pw'"
    )
    monkeypatch.setenv("IMAGEN_DATABASE_URL", postgres.dsn(database, "imagen_weak", "weak-pw"))
    queue = make_queue()
    with pytest.raises(QueueDatabaseError) as info:
        queue.init()
    message = str(info.value)
    assert "permission denied for database" in message
    assert "`imagen queue init` needs a role that may create the schema" in message
    # The failed script's transaction was ended: the next statement gets its own error.
    with pytest.raises(UsageError, match="does not exist: run `imagen queue init`"):
        queue.list()
