"""Small things a user trips over: an empty --backend, a disabled plugin's
advice, `imagen usage` layout, one prompt limit, the progress bar and hints."""

from __future__ import annotations

import pytest

from imagen_core import Request, Session, generate, hookimpl, plugins
from imagen_core.errors import InvalidRequest
from imagen_core.models import MAX_PROMPT_CHARS
from tests.helpers import registered, run_cli


@pytest.mark.parametrize("command", ["generate", "submit"])
def test_an_empty_backend_name_is_a_usage_error(isolated_env, capsys, command):
    code, out, err = run_cli(capsys, command, "x", "-b", "")
    assert code == 2 and out == ""
    assert "the backend name is empty" in err


def test_a_disabled_backend_plugin_is_named_as_disabled_not_missing(
    isolated_env, capsys, monkeypatch
):
    monkeypatch.setenv("IMAGEN_DISABLE_PLUGINS", "mock")
    plugins.reset_plugin_manager(plugins.create_plugin_manager(entry_points=False))
    code, _out, err = run_cli(capsys, "generate", "x")
    assert code == 2
    assert "its plugin is disabled: IMAGEN_DISABLE_PLUGINS names 'mock'" in err
    assert "pip install" not in err


def test_usage_raw_keeps_rows_narrow_and_the_total_says_free(isolated_env, capsys):
    from imagen_core.ledger import Ledger, LedgerConfig

    db = Ledger(LedgerConfig())._connect()
    long_error = "the server said no " * 20
    for status, error in [("ok", None), ("failed", long_error)]:
        db.execute(
            "INSERT INTO usage (created_at, backend, backend_type, model, latency_s, cost_usd,"
            " prompt_sha256, caller, status, error) VALUES ('2026-05-01T00:00:00+00:00',"
            " 'mock', 'mock', 'm', 0.1, 0.0, 'abcdef0123456789', 'alice', ?, ?)",
            (status, error),
        )
    db.close()
    code, out, _err = run_cli(capsys, "usage", "--raw")
    assert code == 0
    header, ok, failed = out.splitlines()
    assert header.endswith("error") and failed.endswith(long_error.strip())
    assert len(ok) < 120  # not padded to the long error's width
    code, out, _err = run_cli(capsys, "usage")
    assert out.splitlines()[-1] == "total: 2 images, 1 failed, estimated cost free"


def test_one_prompt_limit_for_the_cli_and_the_library(isolated_env, capsys):
    Request("x" * MAX_PROMPT_CHARS)  # the limit itself is fine
    with pytest.raises(
        InvalidRequest, match="the prompt is 4001 characters long; the limit is 4000"
    ):
        Request("x" * (MAX_PROMPT_CHARS + 1))
    with pytest.raises(InvalidRequest, match="the negative prompt is 4001 characters"):
        Request("x", negative="y" * (MAX_PROMPT_CHARS + 1))
    code, _out, err = run_cli(capsys, "generate", "x" * 102_000)
    assert code == 2
    assert err.strip() == "imagen: the prompt is 102000 characters long; the limit is 4000"


def test_the_progress_line_is_erased_before_any_hint_or_warning(isolated_env, pm):
    events: list[str] = []

    class Bar:
        def __call__(self, done: int, total: int, message: str = "") -> None:
            events.append("step")

        def close(self) -> None:
            events.append("close")

    class Preview:
        @hookimpl
        def preview(self, path, request, mode, config):
            events.append("preview")
            return True

    with registered(pm, Preview(), "preview-probe"):
        Session().generate(Request("x", width=8, height=8), progress=Bar(), preview=True)
    assert "step" in events and events.index("close") < events.index("preview")
    assert "step" not in events[events.index("close") :]


def test_the_cli_progress_bar_is_closed_after_the_backend_even_when_it_fails(isolated_env):
    from imagen_core.errors import BackendError
    from tests.helpers import write_config

    write_config(isolated_env, "backends:\n  bad: {type: mock, fail: nope}\n")
    closed: list[bool] = []

    class Bar:
        def __call__(self, done: int, total: int, message: str = "") -> None:
            pass

        def close(self) -> None:
            closed.append(True)

    with pytest.raises(BackendError):
        generate(Request("x", backend="bad"), progress=Bar())
    assert closed == [True]
