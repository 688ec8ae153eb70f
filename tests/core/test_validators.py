"""imagen_core.validators and imagen_core.package_data: the checks plugin config
blocks and shipped tables share, each message naming the key and the fix."""

from __future__ import annotations

import attrs
import pytest

from imagen_core import ConfigError, hookimpl, load, setting
from imagen_core.package_data import build_entries, check_price, read_json
from imagen_core.registry import collect
from imagen_core.validators import (
    env_name,
    http_url,
    listed,
    no_trailing_slash,
    not_negative,
    positive,
)
from tests.helpers import registered, write_config

SECRET = "sk_live_0123456789abcdef0123456789abcdef"
asked: list[str] = []


def _names() -> list[str]:
    asked.append("names")
    return ["small", "large"]


@attrs.frozen
class Block:
    key_env: str = setting(
        "FOO_KEY", validator=env_name(secret_prefixes=("sk_",)), help="variable of the key"
    )
    token_env: str | None = setting(
        None,
        validator=env_name(
            secret="API token", secret_signs=(":",), null="for no token", example="FOO_TOKEN"
        ),
        help="variable of the token",
    )
    url: str = setting(
        "https://api.foo.example", converter=no_trailing_slash, validator=http_url(), help="root"
    )
    timeout_s: float = setting(1.0, validator=positive, help="seconds")
    retries: int | None = setting(None, validator=not_negative, help="how many")
    size: str | None = setting(None, validator=listed(_names, "size"), help="a size")


def test_good_values_pass_and_urls_lose_their_trailing_slash():
    block = Block(url="http://h:8/v1/", token_env="TEAM_TOKEN", retries=0, size="large")
    assert block.url == "http://h:8/v1" and block.retries == 0 and block.size == "large"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"timeout_s": 0}, "timeout_s must be more than 0, got 0"),
        ({"retries": -1}, "retries must be 0 or more, got -1"),
        ({"url": "api.foo.example"}, "url must be an http(s) URL such as https://api.foo.example"),
        ({"size": "huge"}, "size 'huge' is not a known size; known: small, large"),
        (
            {"key_env": "my-key"},
            "key_env must be an environment variable name such as FOO_KEY (letters, digits and _)",
        ),
        ({"token_env": "a b"}, "(letters, digits and _), or null for no token"),
    ],
)
def test_bad_values_name_the_key_and_what_it_takes(values, message):
    with pytest.raises(ValueError) as info:
        Block(**values)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"key_env": SECRET}, "key_env looks like an API key: it must name the environment "),
        ({"token_env": "user:" + "f" * 20}, "holds the token (e.g. FOO_TOKEN), never the token"),
        ({"key_env": "A" * 61}, "key_env looks like an API key"),
    ],
)
def test_a_secret_where_its_variable_belongs_is_never_echoed(values, message):
    with pytest.raises(ValueError) as info:
        Block(**values)
    assert message in str(info.value)
    assert next(iter(values.values())) not in str(info.value)


def test_the_table_behind_listed_is_read_only_when_the_key_is_set():
    asked.clear()
    Block()
    assert asked == []
    Block(size="small")
    assert asked == ["names"]


class FooPlugin:
    @hookimpl
    def register_backends(self, register):
        register("foo", lambda config: None, config=Block)


def test_a_validator_message_reaches_the_config_error_with_its_line(pm, isolated_env):
    path = write_config(isolated_env, "backends:\n  f:\n    type: foo\n    url: ftp://x\n")
    with registered(pm, FooPlugin(), "foo"), pytest.raises(ConfigError) as info:
        load(collect(pm), path)
    (problem,) = info.value.problems
    assert problem.startswith("backends.f: url must be an http(s) URL such as https://api.foo")
    assert problem.endswith("imagen.yaml:3:5)")


def test_read_json_reads_a_packaged_file_and_names_a_broken_one(tmp_path, monkeypatch):
    assert "families" in read_json("imagen_fal", "families.json")
    package = tmp_path / "broken_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "table.json").write_text('{"a": 1,}')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError) as info:
        read_json("broken_pkg", "table.json")
    assert str(info.value).startswith("broken_pkg/table.json is not valid JSON (")
    assert str(info.value).endswith("; reinstall the plugin that ships it")


def test_build_entries_names_the_malformed_one():
    def build(key: str, entry: dict) -> int:
        return int(entry["n"])

    assert build_entries({"a": {"n": 1}, "b": {"n": "2"}}, build, what="t.json: row") == {
        "a": 1,
        "b": 2,
    }
    with pytest.raises(ValueError) as info:
        build_entries({"a": {"n": 1}, "b": {}}, build, what="t.json: row")
    assert str(info.value) == "t.json: row 'b' is malformed: KeyError('n')"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"date": "d", "source": "s"}, "needs exactly one of usd_per_image, usd_per_second"),
        (
            {"usd_per_image": 1, "usd_per_second": 1, "date": "d", "source": "s"},
            "needs exactly one of",
        ),
        ({"usd_per_image": -1, "date": "d", "source": "s"}, "has a bad price -1"),
        ({"usd_per_image": True, "date": "d", "source": "s"}, "has a bad price True"),
        ({"usd_per_image": "1", "date": "d", "source": "s"}, "has a bad price '1'"),
        ({"usd_per_image": 0.1, "source": "s"}, "needs a date and a source"),
    ],
)
def test_check_price(entry, message):
    check_price({"usd_per_second": 0.001, "date": "d", "source": "s"}, _UNITS)
    with pytest.raises(ValueError, match=message):
        check_price(entry, _UNITS)


_UNITS = ("usd_per_image", "usd_per_second")
