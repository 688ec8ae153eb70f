from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from imagen_core import setting
from imagen_core.config import load, locate, require_env
from imagen_core.config_sample import sample
from imagen_core.errors import ConfigError, UsageError
from imagen_core.registry import collect
from tests.helpers import write_config


@pytest.fixture
def registry(pm):
    return collect(pm)


def test_locate_precedence(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert locate().path == isolated_env / ".config" / "imagen.yaml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert locate().path == isolated_env / ".config" / "imagen.yaml"
    assert locate().source == "default location"
    monkeypatch.setenv("XDG_CONFIG_HOME", "/xdg")
    assert locate().path == Path("/xdg/imagen.yaml")
    monkeypatch.setenv("IMAGEN_CONFIG", "/env/i.yaml")
    assert locate().path == Path("/env/i.yaml")
    assert locate("/flag/i.yaml").path == Path("/flag/i.yaml")
    assert locate("~/i.yaml").path == isolated_env / "i.yaml"


def test_no_file_means_working_defaults(registry) -> None:
    config = load(registry)
    assert config.path is None
    assert config.default_backend == "mock"
    assert config.backend(None, registry).type == "mock"
    assert config.output.dir == Path("~/Pictures/imagen").expanduser()


def test_a_named_file_that_is_missing_is_an_error(registry, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"does not exist \(named by --config\)"):
        load(registry, "/nowhere/imagen.yaml")
    monkeypatch.setenv("IMAGEN_CONFIG", "/nowhere/x.yaml")
    with pytest.raises(ConfigError, match=r"named by \$IMAGEN_CONFIG"):
        load(registry)


def test_unreadable_config(registry, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(registry, tmp_path)  # a folder, unreadable as a file even for root


def test_yaml_syntax_error_names_line_and_column(registry, isolated_env) -> None:
    path = write_config(isolated_env, "output:\n  dir: /tmp\n  naming: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load(registry)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}:")
    assert "YAML syntax error" in problem
    assert "\n" not in problem


def test_duplicate_keys_are_reported(registry, isolated_env) -> None:
    write_config(isolated_env, "default_backend: mock\ndefault_backend: mock\n")
    with pytest.raises(ConfigError, match=r"duplicate key"):
        load(registry)


def test_every_problem_reported_at_once_with_positions(registry, isolated_env) -> None:
    path = write_config(
        isolated_env,
        "\n".join(
            [
                "outptu: {}",  # 1
                "output:",  # 2
                "  sidecar: maybe",  # 3
                "  preview: sometimes",  # 4
                "  naming: ../{slug}.png",  # 5
                "styles:",  # 6
                "  plain: no placeholder",  # 7
                "backends:",  # 8
                "  slow:",  # 9
                "    type: mock",  # 10
                "    latency_s: four",  # 11
                "    latncy: 1",  # 12
                "default_backend: nope",  # 13
            ]
        ),
    )
    with pytest.raises(ConfigError) as info:
        load(registry)
    problems = info.value.problems
    expected = [
        f"outptu: unknown key (did you mean 'output'?); known keys: default_backend, output, styles, backends, sinks, queue, mcp, budgets ({path}:1:1)",
        f"output.sidecar: expected true/false, got 'maybe' ({path}:3:12)",
        f"output.preview: expected one of auto | on | off, got 'sometimes' ({path}:4:12)",
        f"styles.plain: the template must contain {{prompt}} ({path}:7:10)",
        f"backends.slow.latency_s: expected a number, got 'four' ({path}:11:16)",
        f"default_backend: names no configured backend; configured are mock, slow ({path}:13:18)",
    ]
    for line in expected:
        assert line in problems, (line, problems)
    assert any(p.startswith("output.naming: must not contain '..'") for p in problems)
    assert any(
        p.startswith("backends.slow.latncy: unknown key (did you mean 'latency_s'?)")
        and p.endswith(f"({path}:12:5)")
        for p in problems
    )
    assert len(problems) == 8


def test_validators_of_a_plugin_config_are_reported_at_the_block(registry, isolated_env) -> None:
    path = write_config(isolated_env, "backends:\n  m:\n    type: mock\n    latency_s: -1\n")
    with pytest.raises(ConfigError) as info:
        load(registry)
    assert info.value.problems == [
        f"backends.m: latency_s must be 0 or more, got -1.0 ({path}:3:5)"
    ]


def test_types_are_strict(registry, isolated_env) -> None:
    write_config(isolated_env, "backends:\n  m: {type: mock, model: 3, latency_s: true}\n")
    with pytest.raises(ConfigError) as info:
        load(registry)
    assert any("backends.m.model: expected a string, got 3" in p for p in info.value.problems)
    assert any(
        "backends.m.latency_s: expected a number, got True" in p for p in info.value.problems
    )


def test_top_level_must_be_a_mapping(registry, isolated_env) -> None:
    write_config(isolated_env, "- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping of keys, got a list"):
        load(registry)


def test_empty_file_is_the_defaults(registry, isolated_env) -> None:
    write_config(isolated_env, "# nothing yet\n")
    assert load(registry).default_backend == "mock"


def test_unknown_backend_type_is_deferred_until_used(registry, isolated_env) -> None:
    path = write_config(
        isolated_env,
        "backends:\n  flux:\n    type: comfyui\n    url: http://x\n  fast: {type: mock}\n",
    )
    config = load(registry)
    assert config.backend("fast", registry).type == "mock"
    with pytest.raises(UsageError) as info:
        config.backend("flux", registry)
    message = str(info.value)
    assert message.startswith("backends.flux: unknown backend type 'comfyui'")
    assert f"({path}:2:3)" in message
    assert "pip install imagen-comfyui" in message
    with pytest.raises(ConfigError):
        load(registry, strict=True)


def test_unknown_backend_name_lists_the_configured_ones(registry) -> None:
    config = load(registry)
    with pytest.raises(UsageError, match=r"unknown backend 'mokc' \(did you mean 'mock'\?\)"):
        config.backend("mokc", registry)


def test_type_defaults_to_the_block_name(registry, isolated_env) -> None:
    write_config(isolated_env, "backends:\n  mock:\n    latency_s: 0.5\n")
    instance = load(registry).backend("mock", registry)
    assert instance.type == "mock"
    assert instance.settings.latency_s == 0.5


def test_sample_config_passes_validation_unchanged(registry) -> None:
    text = sample(registry)
    from imagen_core.config import from_text

    loaded = from_text(text, registry, path=Path("sample.yaml"), strict=True)
    assert set(loaded.backends) >= {"mock", "mock-slow"}
    assert loaded.backends["mock-slow"].settings.latency_s == 3.0
    assert set(loaded.styles) == {"blog-header", "photo"}
    # every key of every installed type is explained by a comment
    assert "# simulated work in seconds" in text
    assert "pip install imagen-comfyui" in text


def test_require_env_names_the_variable(monkeypatch) -> None:
    monkeypatch.delenv("SOME_TOKEN", raising=False)
    with pytest.raises(
        ConfigError, match=r"^set SOME_TOKEN in the environment \(named by api_token_env\)$"
    ):
        require_env("SOME_TOKEN")
    monkeypatch.setenv("SOME_TOKEN", "s3cret")
    assert require_env("SOME_TOKEN") == "s3cret"


def test_validate_reports_uninstalled_types_with_everything_else(registry, isolated_env) -> None:
    write_config(isolated_env, "output: {sidecar: 1}\nbackends:\n  flux: {type: comfyui}\n")
    with pytest.raises(ConfigError) as info:
        load(registry, strict=True)
    assert len(info.value.problems) == 2
    assert "pip install imagen-comfyui" in info.value.problems[1]


def test_a_null_value_is_reported_at_its_key(registry, isolated_env) -> None:
    # `#` starts a YAML comment: the value is null, and the next token is two lines on.
    path = write_config(isolated_env, "backends:\n  m:\n    model: #336699\n\n    type: mock\n")
    with pytest.raises(ConfigError) as info:
        load(registry)
    assert info.value.problems == [
        f"backends.m.model: expected a string, got nothing (null) ({path}:3:5)"
    ]


class _RequiredPlugin:
    from imagen_core import hookimpl

    @hookimpl
    def register_backends(self, register):
        import attrs

        from imagen_core import setting

        @attrs.frozen
        class NeedsModel:
            model: str = setting(help="the model to run")

        register("needy", lambda config: None, config=NeedsModel)


def test_types_with_required_keys(pm, isolated_env) -> None:
    from tests.helpers import registered

    with registered(pm, _RequiredPlugin(), "needy"):
        registry = collect(pm)
        config = load(registry)
        with pytest.raises(
            UsageError,
            match=r"backend type 'needy' needs a block in imagen.yaml for its required keys \(model\)",
        ):
            config.backend("needy", registry)
        text = sample(registry)
        assert (
            "  # needs values for model before it can be used:\n  # needy:\n  #   type: needy"
            in text
        )
        from imagen_core.config import from_text

        assert from_text(text, registry, strict=True).backends.keys() >= {"mock"}
        write_config(isolated_env, "backends:\n  n: {type: needy}\n")
        with pytest.raises(ConfigError, match=r"backends.n.model: required key is missing"):
            load(registry)


def test_a_default_sink_needs_defaults_for_every_key(pm) -> None:
    import attrs

    from imagen_core import hookimpl, setting
    from imagen_core.errors import PluginError
    from tests.helpers import registered

    @attrs.frozen
    class Needs:
        bucket: str = setting(help="bucket")

    class Plugin:
        @hookimpl
        def register_sinks(self, register):
            register("cloud", object, config=Needs, default=True)

    with registered(pm, Plugin(), "cloud"), pytest.raises(PluginError, match="on by default"):
        collect(pm)


def test_a_lazily_registered_default_sink_is_checked_when_sinks_are_first_used(pm) -> None:
    # Registered with a function, the config class's module is imported (and
    # checked) only by a command that uses sinks: `imagen jobs` never does.
    import attrs

    from imagen_core import hookimpl, setting
    from imagen_core.config import Config
    from imagen_core.errors import PluginError
    from tests.helpers import registered

    @attrs.frozen
    class Needs:
        bucket: str = setting(help="bucket")

    imported = []

    def config() -> type:
        imported.append(Needs)
        return Needs

    class Plugin:
        @hookimpl
        def register_sinks(self, register):
            register("cloud", object, config=config, default=True)

    with registered(pm, Plugin(), "cloud"):
        registry = collect(pm)
        assert imported == []
        with pytest.raises(PluginError, match="on by default, but its config has keys"):
            Config().active_sinks(registry)


def test_a_sink_on_by_default_through_a_function_asks_it_with_the_config(pm) -> None:
    from imagen_core import hookimpl
    from imagen_core.config import Config, from_text
    from tests.helpers import registered

    asked: list[str] = []

    def wanted(config: Config) -> bool:
        asked.append(config.output.cloud_sync)
        return config.output.cloud_sync == "on"

    def broken(config: Config) -> bool:
        raise RuntimeError("a plugin's bug")

    class Plugin:
        @hookimpl
        def register_sinks(self, register):
            register("maybe", object, default=wanted)
            register("broken", object, default=broken)

    with registered(pm, Plugin(), "maybe"):
        registry = collect(pm)
        names = [i.name for i in Config().active_sinks(registry)]
        assert "maybe" not in names and asked == ["auto"]
        # A function that raises builds the sink: its problems are its own to report.
        assert "broken" in names
        on = from_text("output:\n  cloud_sync: on\n", registry)
        assert "maybe" in [i.name for i in on.active_sinks(registry)]
        # A block in imagen.yaml runs it whatever the function says.
        listed = from_text("sinks:\n  maybe: {}\n", registry)
        assert "maybe" in [i.name for i in listed.active_sinks(registry)]


@pytest.mark.parametrize("default", ["yes", None, 1])
def test_a_default_that_is_neither_a_bool_nor_a_function_is_refused(pm, default) -> None:
    from imagen_core import hookimpl
    from imagen_core.errors import PluginError
    from tests.helpers import registered

    class Plugin:
        @hookimpl
        def register_sinks(self, register):
            register("odd", object, default=default)

    with (
        registered(pm, Plugin(), "odd"),
        pytest.raises(PluginError, match=r"default=.*give True, False or a function"),
    ):
        collect(pm)


@attrs.frozen
class _Inner:
    steps: int = setting(4, help="steps")


@attrs.frozen
class _Outer:
    defaults: _Inner = setting(attrs.Factory(_Inner), help="defaults")


def test_sample_writes_nested_settings_as_mappings(pm) -> None:
    from imagen_core import hookimpl
    from imagen_core.config import from_text
    from tests.helpers import registered

    class P:
        @hookimpl
        def register_backends(self, register):
            register("nested", lambda c: None, config=_Outer)

    with registered(pm, P(), "nested"):
        registry = collect(pm)
        text = sample(registry)
        assert 'defaults: {"steps": 4}' in text
        assert (
            from_text(text, registry, strict=True).backends["nested"].settings.defaults.steps == 4
        )


def test_a_list_default_is_given_with_a_factory(pm, isolated_env) -> None:
    # What docs/plugins.md shows: a mutable default through attrs.Factory.
    from imagen_core import hookimpl
    from imagen_core.config import from_text
    from tests.helpers import registered

    @attrs.frozen
    class Tagged:
        tags: list[str] = setting(attrs.Factory(lambda: ["draft"]), help="labels")
        loras: list[str] = setting(attrs.Factory(list), help="LoRA files")

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("tagged", object, config=Tagged)

    with registered(pm, Plugin(), "tagged"):
        registry = collect(pm)
        text = sample(registry)
        assert '#   tags: ["draft"]' in text or '  tags: ["draft"]' in text, text
        config = from_text(
            "backends:\n  a: {type: tagged}\n  b: {type: tagged, tags: [x, y]}\n", registry
        )
    assert config.backends["a"].settings == Tagged(tags=["draft"], loras=[])
    assert config.backends["b"].settings.tags == ["x", "y"]
    assert config.backends["a"].settings.tags is not Tagged().tags  # never shared


# ------------------------------------------------------- hostile files (issue 12)

BOMB = """backends:
  mock:
    type: mock
    bomb:
      a: &a [x, x, x, x, x, x, x, x, x, x]
      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def test_an_alias_bomb_is_refused_at_its_line_without_expanding_it(registry, isolated_env):
    path = write_config(isolated_env, BOMB)
    with pytest.raises(ConfigError) as info:
        load(registry)  # 10^8 values if expanded: this returns at once, or not at all
    assert info.value.problems == [
        "backends.mock.bomb.e: its aliases expand to more than 100,000 values (or it "
        f"contains itself); write the values out instead of nesting anchors ({path}:9:10)"
    ]


def test_aliases_of_a_sane_size_still_work(registry, isolated_env):
    write_config(
        isolated_env,
        "styles:\n  a: &s 'poster of {prompt}'\n  b: *s\n"
        "backends:\n  m1: &m {type: mock, latency_s: 0}\n  m2: *m\n",
    )
    config = load(registry)
    assert config.styles["b"] == "poster of {prompt}" and set(config.backends) == {"m1", "m2"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("default_backend: !!int comfyui\n", "1:18: the tag !!int cannot hold 'comfyui'"),
        ("sinks:\n  ledger:\n    type: !!bool ledger\n", "3:11: the tag !!bool cannot hold"),
        ('output:\n  naming: "a\x07b"\n', "2:13: character U+0007 is not allowed in YAML"),
    ],
)
def test_tags_and_characters_yaml_refuses_are_file_line_col(registry, isolated_env, text, problem):
    path = write_config(isolated_env, text)
    with pytest.raises(ConfigError) as info:
        load(registry)
    assert info.value.exit_code == 2
    assert info.value.problems[0].startswith(f"{path}:{problem}")


def test_a_file_that_is_not_utf8_names_the_line(registry, isolated_env):
    path = write_config(isolated_env, "")
    path.write_bytes(b"output:\n  # caf\xe9\n  naming: x\n")
    with pytest.raises(ConfigError) as info:
        load(registry)
    assert info.value.problems == [
        f"{path}:2:8: not UTF-8 text (byte b'\\xe9'); save the file as UTF-8"
    ]


def test_nul_characters_and_numbers_no_setting_can_hold(registry, isolated_env):
    path = write_config(
        isolated_env,
        'output:\n  dir: "/tmp/x\\0y"\n  naming: "{slug}\\0.{ext}"\n'
        "backends:\n  m: {type: mock, latency_s: .inf}\n  n: {type: mock, latency_s: .nan}\n"
        "  o: {type: mock, latency_s: 1e300}\n",
    )
    with pytest.raises(ConfigError) as info:
        load(registry)
    assert info.value.problems == [
        f"output.dir: holds a NUL character at 7; remove it ({path}:2:8)",
        f"output.naming: holds a NUL character at 7; remove it ({path}:3:11)",
        f"backends.m.latency_s: expected a number between -1e9 and 1e9, got inf ({path}:5:30)",
        f"backends.n.latency_s: expected a number between -1e9 and 1e9, got nan ({path}:6:30)",
        f"backends.o.latency_s: expected a number between -1e9 and 1e9, got 1e+300 ({path}:7:30)",
    ]


def test_every_problem_of_a_block_is_reported(pm, isolated_env):
    from imagen_core import hookimpl
    from tests.helpers import registered

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("checked", object, config=Checked)

    path = write_config(
        isolated_env,
        "backends:\n  c:\n    type: checked\n    url: ftp://x\n    mode: odd\n    colour: 3\n",
    )
    with registered(pm, Plugin(), "checked"), pytest.raises(ConfigError) as info:
        load(collect(pm))
    assert info.value.problems == [
        f"backends.c.colour: unknown key (did you mean 'color'?); known keys: url, mode, color "
        f"({path}:6:5)",
        f"backends.c: url must be http(s), got 'ftp://x' ({path}:3:5)",
        f"backends.c: mode must be fast or slow, got 'odd' ({path}:3:5)",
    ]


def _url(_instance, _attribute, value):
    if not value.startswith("http"):
        raise ValueError(f"url must be http(s), got {value!r}")


def _mode(_instance, _attribute, value):
    if value not in ("fast", "slow"):
        raise ValueError(f"mode must be fast or slow, got {value!r}")


@attrs.frozen
class Checked:
    url: str = setting("http://x", validator=_url, help="where")
    mode: str = setting("fast", validator=_mode, help="how")
    color: int = setting(0, help="which")

    def problems(self) -> list[str]:
        return ["the server at url is not configured for mode"] if self.mode == "slow" else []


def test_validate_runs_the_deeper_checks_of_a_config_class(pm, isolated_env):
    from imagen_core import hookimpl
    from imagen_core.config import from_text
    from tests.helpers import registered

    class Plugin:
        @hookimpl
        def register_backends(self, register):
            register("checked", object, config=Checked)

    text = "backends:\n  c: {type: checked, mode: slow}\n"
    with registered(pm, Plugin(), "checked"):
        registry = collect(pm)
        assert from_text(text, registry).backends["c"].settings.mode == "slow"  # not at load
        with pytest.raises(ConfigError) as info:
            from_text(text, registry, path=Path("x.yaml"), strict=True)
    assert info.value.problems == [
        "backends.c: the server at url is not configured for mode (x.yaml:2:6)"
    ]


def test_turning_off_a_sink_that_does_not_exist_is_a_problem_for_validate(registry, isolated_env):
    path = write_config(isolated_env, "sinks:\n  ledgr: false\n  ledger: false\n")
    assert load(registry).active_sinks(registry) == []  # harmless when used
    with pytest.raises(ConfigError) as info:
        load(registry, strict=True)
    assert info.value.problems == [
        f"sinks.ledgr: no sink named 'ledgr' (did you mean 'ledger'?) ({path}:2:3); "
        "sinks are: ledger"
    ]
