"""imagen-supabase as a plugin: registered as a default sink, cheap to import,
its block validated like any other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import imagen_supabase
from imagen_core import ConfigError, Request, Session, __version__
from imagen_core.cli import main
from imagen_supabase.settings import SupabaseConfig, Table
from imagen_supabase.sink import SupabaseSink
from tests.helpers import write_config

ROOT = Path(__file__).resolve().parents[2]


def supabase_sinks(session: Session) -> list[object]:
    return [s for instance, s in session.sinks() if instance.name == "supabase"]


@pytest.mark.parametrize(
    "variable", ["SUPABASE_URL", "SUPABASE_SERVICE_KEY", "MAI_SUPABASE_KEY", "IMAGEN_CLOUD_SYNC"]
)
def test_registers_a_default_sink(
    plugin: object, isolated_env: Path, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "on" if variable == "IMAGEN_CLOUD_SYNC" else "x")
    (sink,) = supabase_sinks(Session())
    assert isinstance(sink, SupabaseSink)
    assert sink.config == SupabaseConfig()
    assert sink.images_table == Table("imagen", "images")
    assert sink.usage_table == Table("mai", "imagen_usage")


def test_the_default_sink_is_not_built_when_it_has_nothing_to_do(
    plugin: object, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No credential variable and cloud sync not on: every send would return at
    once, so the sink is neither built nor imported."""
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_KEY", "MAI_SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGEN_CLOUD_SYNC", "auto")
    assert supabase_sinks(Session()) == []
    monkeypatch.setenv("SUPABASE_URL", "   ")  # blank is unset, as the sink reads it
    assert supabase_sinks(Session()) == []


def test_cloud_sync_on_in_the_config_builds_it_and_fails_without_credentials(
    plugin: object, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SUPABASE_URL", "SUPABASE_SERVICE_KEY", "MAI_SUPABASE_KEY", "IMAGEN_CLOUD_SYNC"):
        monkeypatch.delenv(name, raising=False)
    write_config(isolated_env, "output:\n  cloud_sync: on\n")
    session = Session()
    assert len(supabase_sinks(session)) == 1
    with pytest.raises(ConfigError, match="cloud sync is on, but SUPABASE_URL"):
        session.generate(Request("x", backend="mock", width=8, height=8))


def test_import_and_registration_do_not_load_requests() -> None:
    code = (
        "import sys, imagen_supabase\n"
        "from imagen_core.plugins import create_plugin_manager\n"
        "from imagen_core.registry import collect\n"
        "pm = create_plugin_manager(entry_points=False)\n"
        "pm.register(imagen_supabase, name='supabase')\n"
        "assert 'supabase' in collect(pm).sinks\n"
        "heavy = [m for m in ('requests', 'urllib3', 'imagen_supabase.transport') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("owner_user_id: me", "owner_user_id must be your Supabase user id (a uuid"),
        ("images_table: 'imagen.images; drop'", "images_table: expected a table as schema.name"),
        ("usage_table: a.b.c", "usage_table: expected a table as schema.name"),
        ("bucket: 'a/b'", "bucket must be a Storage bucket name"),
        ("timeout_s: 0", "timeout_s must be more than 0"),
        ("retries: 50", "retries must be between 0 and 10"),
        ("url: https://x.supabase.co", "sinks.supabase.url: unknown key"),
        ("service_key: abc", "sinks.supabase.service_key: unknown key"),
    ],
)
def test_bad_block_is_a_config_error(
    plugin: object, isolated_env: Path, block: str, message: str
) -> None:
    write_config(isolated_env, f"sinks:\n  supabase:\n    {block}\n")
    with pytest.raises(ConfigError) as error:
        Session()
    assert message in str(error.value)
    assert "imagen.yaml:3:" in str(error.value)


def test_tables_parse() -> None:
    assert Table.parse("images") == Table("public", "images")
    assert str(Table.parse("mai.imagen_usage")) == "mai.imagen_usage"


def test_sample_config_lists_the_sink_and_validates(
    plugin: object, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main(["config", "init"])
    sample = capsys.readouterr().out
    assert "  supabase:\n    type: supabase\n" in sample
    assert 'owner_user_id: ""' in sample
    path = isolated_env / "sample.yaml"
    path.write_text(sample)
    with pytest.raises(SystemExit) as exit_:
        main(["config", "validate", "--config", str(path)])
    assert exit_.value.code == 0


def test_version_moves_in_lockstep() -> None:
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "plugins" / "imagen-supabase" / "pyproject.toml").read_text())
    data = project["project"]
    assert data["version"] == __version__
    assert f"imagen-core=={__version__}" in data["dependencies"]
    assert any(d.startswith("requests>=") for d in data["dependencies"])
    assert data["entry-points"]["imagen"] == {"supabase": "imagen_supabase"}
    assert imagen_supabase.__file__
