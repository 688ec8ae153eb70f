"""When cloud sync runs: output.cloud_sync × IMAGEN_CLOUD_SYNC × --no-cloud ×
credentials × owner_user_id, and `on` failing before anything is generated."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from imagen_core import ConfigError
from imagen_core.cli import main
from imagen_supabase.sink import Plan, plan
from tests.supabase.fake import FakeSupabase
from tests.supabase.util import OWNER, make, supabase_config, sync_warnings

pytestmark = pytest.mark.usefixtures("plugin")


@pytest.mark.parametrize(
    ("mode", "creds", "owner", "expected"),
    [
        ("off", True, True, Plan(usage_row=False, image=False)),
        ("off", False, False, Plan(usage_row=False, image=False)),
        ("auto", True, True, Plan(usage_row=True, image=True)),
        ("auto", True, False, Plan(usage_row=True, image=False)),
        ("auto", False, True, Plan(usage_row=False, image=False)),
        ("on", True, True, Plan(usage_row=True, image=True)),
    ],
)
def test_plan(mode: str, creds: bool, owner: bool, expected: Plan) -> None:
    assert plan(mode, credentials_set=creds, owner_set=owner) == expected


CASES = list(
    itertools.product(
        ["auto", "on", "off"],  # output.cloud_sync
        [None, "auto", "on", "off"],  # IMAGEN_CLOUD_SYNC
        [False, True],  # --no-cloud
        [True, False],  # credentials in the environment
        [True, False],  # owner_user_id set
    )
)


def _id(case: tuple[object, ...]) -> str:
    config, env, no_cloud, creds, owner = case
    return (
        f"config={config}-env={env}-{'no_cloud' if no_cloud else 'flagless'}-"
        f"{'creds' if creds else 'nocreds'}-{'owner' if owner else 'noowner'}"
    )


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_mode_table(
    case: tuple[str, str | None, bool, bool, bool],
    fake: FakeSupabase,
    isolated_env: Path,
    output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config, env, no_cloud, creds, owner = case
    supabase_config(isolated_env, cloud_sync=config, owner=OWNER if owner else "")
    if env is not None:
        monkeypatch.setenv("IMAGEN_CLOUD_SYNC", env)
    if creds:
        monkeypatch.setenv("SUPABASE_URL", fake.url)
        monkeypatch.setenv("SUPABASE_SERVICE_KEY", "sb_secret_FAKEfake0123456789abcdefFAKE")

    # The oracle: --no-cloud > IMAGEN_CLOUD_SYNC > output.cloud_sync.
    mode = "off" if no_cloud else (env or config)
    if mode == "on" and not (creds and owner):
        with pytest.raises(ConfigError, match="cloud sync is on, but"):
            make(cloud=False if no_cloud else None)
        assert not output_dir.exists() or not any(output_dir.rglob("*.*"))
        assert fake.requests == []
        return
    make(cloud=False if no_cloud else None)
    sent = [r.path.split("/")[3] if r.path.startswith("/rest") else "upload" for r in fake.requests]
    usage = creds and mode != "off"
    image = usage and owner
    assert sent == ["imagen_usage"] * usage + ["upload", "images"] * image
    assert sync_warnings(capsys) == []


def test_no_cloud_flag_on_the_command_line(
    fake: FakeSupabase, credentials: str, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env, cloud_sync="on")
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "a fox", "--size", "16x16", "--no-cloud"])
    assert exit_.value.code == 0
    assert fake.requests == []
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "a fox", "--size", "16x16"])
    assert exit_.value.code == 0
    assert len(fake.requests) == 3


@pytest.mark.parametrize(
    ("creds", "owner", "says", "not_says"),
    [
        (False, False, ["SUPABASE_URL and SUPABASE_SERVICE_KEY", "owner_user_id is empty"], []),
        (False, True, ["SUPABASE_URL and SUPABASE_SERVICE_KEY (or MAI_SUPABASE_KEY)"], ["owner"]),
        (True, False, ["owner_user_id is empty", "auth.users.id"], ["SUPABASE_URL"]),
    ],
)
def test_on_without_what_it_needs_fails_before_generating(
    creds: bool,
    owner: bool,
    says: list[str],
    not_says: list[str],
    fake: FakeSupabase,
    isolated_env: Path,
    output_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    supabase_config(isolated_env, owner=OWNER if owner else "")
    if creds:
        monkeypatch.setenv("SUPABASE_URL", fake.url)
        monkeypatch.setenv("MAI_SUPABASE_KEY", "sb_secret_FAKEfake0123456789abcdefFAKE")
    monkeypatch.setenv("IMAGEN_CLOUD_SYNC", "on")
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "a fox", "--size", "16x16"])
    assert exit_.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert line.startswith("imagen: cloud sync is on, but ")
    for text in [*says, "--no-cloud", "IMAGEN_CLOUD_SYNC=off"]:
        assert text in line
    for text in not_says:
        assert text not in line
    # Nothing generated, written or recorded.
    assert not output_dir.exists() or not any(output_dir.rglob("*.*"))
    assert fake.requests == []
    ledger = isolated_env / ".local" / "share" / "imagen" / "usage.db"
    assert not ledger.exists()


def test_half_set_credentials_warn_once_in_auto(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    supabase_config(isolated_env)
    monkeypatch.setenv("SUPABASE_URL", "https://example.supabase.co")
    make()
    make(seed=8)
    assert sync_warnings(capsys) == [
        "imagen: cloud sync: SUPABASE_SERVICE_KEY (or MAI_SUPABASE_KEY) is not set in the "
        "environment (the project's service_role or secret key); nothing is synced"
    ]


def test_url_that_is_not_a_url_is_never_echoed(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Say the key was pasted into the wrong variable: it must not be printed.
    monkeypatch.setenv("SUPABASE_URL", "sb_secret_pasted_in_the_wrong_place")
    monkeypatch.setenv("SUPABASE_SERVICE_KEY", "sb_secret_pasted_in_the_wrong_place")
    supabase_config(isolated_env)
    make()
    (line,) = sync_warnings(capsys)
    assert "SUPABASE_URL is not an http(s) URL" in line
    assert "pasted" not in line
    monkeypatch.setenv("IMAGEN_CLOUD_SYNC", "on")
    with pytest.raises(ConfigError) as error:
        make()
    assert "SUPABASE_URL is not an http(s) URL" in str(error.value)
    assert "pasted" not in str(error.value)


def test_sink_turned_off_in_config_does_nothing(
    fake: FakeSupabase, credentials: str, isolated_env: Path
) -> None:
    from tests.helpers import write_config

    write_config(isolated_env, "output: {cloud_sync: on}\nsinks:\n  supabase: false\n")
    make()
    assert fake.requests == []
