from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import click
import pytest

from imagen_core import hookimpl
from imagen_core.cli import COMMANDS, cli, main
from tests.helpers import registered, run_cli, write_config


def test_generate_prints_only_the_path_when_not_a_tty(capsys, output_dir):
    code, out, err = run_cli(
        capsys, "generate", "a", "red", "fox", "--size", "64x32", "--seed", "5"
    )
    assert code == 0 and err == ""
    path = Path(out.strip())
    assert out.count("\n") == 1 and path.exists()
    assert path.name.endswith("-a-red-fox-5.png")
    assert path.with_suffix(".json").exists()


def test_generate_reads_the_prompt_from_stdin(capsys, monkeypatch, tmp_path):
    code, out, _ = run_cli(
        capsys,
        "generate",
        "-",
        "-o",
        str(tmp_path / "x.png"),
        "--no-sidecar",
        stdin="a quiet harbour\n",
    )
    assert code == 0 and out.strip() == str(tmp_path / "x.png")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "12x"], "Invalid value for '--size': '12x' is not WIDTHxHEIGHT"),
        (["--size", "0x0"], "width must be between 1 and 8192, got 0"),
        (["--size", "99999x10"], "width must be between 1 and 8192, got 99999"),
        (["--seed", "abc"], "Invalid value for '--seed': 'abc' is not a valid integer"),
        (["--steps", "-3"], "Invalid value for '--steps'"),
        (["--backend", "nope"], "unknown backend 'nope'"),
        (["--style", "nope"], "unknown style 'nope'; known styles: none"),
        (["--config", "/no/such.yaml"], "config file /no/such.yaml does not exist"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(capsys, args, message, output_dir):
    code, out, err = run_cli(capsys, "generate", "a cat", *args)
    assert code == 2, err
    assert out == ""
    assert err.startswith("imagen: ") and message in err
    assert len(err.splitlines()) == 1
    assert "Traceback" not in err
    assert not output_dir.exists() or not any(output_dir.rglob("*.png"))


def test_a_prompt_that_is_not_utf8_is_refused_before_anything_is_written(
    capsys, monkeypatch, output_dir
):
    from imagen_core.ledger import default_path

    stdin = io.TextIOWrapper(io.BytesIO(b"caf\xe9 latte"), encoding="latin-1")
    monkeypatch.setattr("sys.stdin", stdin)
    code, out, err = run_cli(capsys, "generate", "-")
    assert (code, out) == (2, "")
    assert err == (
        "imagen: the prompt on stdin is not UTF-8 text: byte 4 is b'\\xe9'; "
        "convert it first (e.g. iconv -f latin1 -t utf-8)\n"
    )
    # The same bytes as an argument arrive as a surrogate (Python's argv decoding).
    code, out, err = run_cli(capsys, "generate", "caf\udce9 latte")
    assert (code, out) == (2, "")
    assert err.startswith("imagen: prompt is not valid text at character 4 ")
    assert not output_dir.exists() and not default_path().exists()


def test_missing_prompt_is_a_usage_error(capsys):
    code, _, err = run_cli(capsys, "generate")
    assert code == 2 and "Missing argument 'PROMPT...'" in err and "imagen generate --help" in err


def test_config_problems_are_all_listed_with_exit_2(capsys, isolated_env):
    path = write_config(
        isolated_env, "output:\n  sidecar: 3\nbackends:\n  m: {type: mock, bogus: 1}\n"
    )
    code, _, err = run_cli(capsys, "generate", "x")
    assert code == 2
    assert err.splitlines() == [
        f"imagen: output.sidecar: expected true/false, got 3 ({path}:2:12)",
        f"imagen: backends.m.bogus: unknown key; known keys: latency_s, fail, model, cost_usd ({path}:4:19)",
    ]


def test_failed_generation_exits_1(capsys, isolated_env, output_dir):
    write_config(isolated_env, "backends:\n  bad: {type: mock, fail: out of memory}\n")
    code, out, err = run_cli(capsys, "generate", "x", "-b", "bad")
    assert (code, out) == (1, "")
    assert err == "imagen: mock backend failed as configured: out of memory\n"


def test_unwritable_output_exits_1_before_generating(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run_cli(capsys, "generate", "x", "-o", str(blocker / "sub" / "x.png"))
    assert code == 1 and "cannot create output folder" in err


class Interrupting:
    def __init__(self, config):
        pass

    def generate(self, request, progress):
        raise KeyboardInterrupt


class Buggy:
    def __init__(self, config):
        pass

    def generate(self, request, progress):
        return None


class Plugin:
    @hookimpl
    def register_backends(self, register):
        register("interrupting", Interrupting)

    @hookimpl
    def register_commands(self, cli):
        @cli.command()
        def hello():
            """Say hello from a plugin."""
            click.echo("hello from a plugin")

        @cli.command()
        def explode():
            """Fail with an unexpected error."""
            raise ValueError("wires crossed")

        @cli.command(name="generate")
        def hijack():
            click.echo("hijacked")


def test_interrupt_exits_130(capsys, pm):
    with registered(pm, Plugin(), "plugin"):
        code, _, err = run_cli(capsys, "generate", "x", "-b", "interrupting")
    assert code == 130 and err.endswith("imagen: interrupted\n")


def test_plugin_commands_appear_and_run_but_cannot_replace_builtins(capsys, pm):
    with registered(pm, Plugin(), "plugin"):
        code, out, err = run_cli(capsys, "--help")
        assert code == 0 and "hello" in out and "Say hello from a plugin." in out
        assert "replace `imagen generate`" in err
        assert run_cli(capsys, "hello")[:2] == (0, "hello from a plugin\n")
        code, out, _ = run_cli(capsys, "generate", "x", "-o", "/dev/null/x.png")
        assert "hijacked" not in out
    code, out, _ = run_cli(capsys, "--help")
    assert "hello" not in out  # gone with the plugin


def test_each_row_of_the_command_table_is_its_command():
    for name, where in COMMANDS.items():
        command = getattr(
            importlib.import_module(f"imagen_core.cli.{where.module}"), where.attribute
        )
        assert command.name == name
        first_paragraph = command.help.split("\n\n")[0]
        assert " ".join(first_paragraph.split()) == where.short_help, name


@pytest.mark.parametrize("width", [50, 80, 120])
def test_help_lists_commands_from_the_table_as_click_would_from_the_commands(width, pm):
    with registered(pm, Plugin(), "plugin"):
        ctx = click.Context(cli, info_name="imagen")
        names = cli.list_commands(ctx)
        assert "hello" in names and set(COMMANDS) <= set(names)
        plain = click.Group(commands={name: cli.get_command(ctx, name) for name in names})
        ours, clicks = click.HelpFormatter(width=width), click.HelpFormatter(width=width)
        cli.format_commands(ctx, ours)
        plain.format_commands(ctx, clicks)
    assert ours.getvalue() == clicks.getvalue()


def test_internal_errors_hide_the_traceback_unless_debug(capsys, pm, monkeypatch):
    with registered(pm, Plugin(), "plugin"):
        code, _, err = run_cli(capsys, "explode")
        assert code == 1
        assert err.splitlines()[-1] == (
            "imagen: internal error: ValueError: wires crossed "
            "(run with --debug for the traceback, and please report it)"
        )
        assert "Traceback" not in err
        monkeypatch.setenv("IMAGEN_DEBUG", "1")
        with pytest.raises(ValueError, match="wires crossed"):
            main(["explode"])


def test_debug_shows_traceback_for_imagen_errors(capsys, isolated_env):
    write_config(isolated_env, "backends:\n  bad: {type: mock, fail: boom}\n")
    code, _, err = run_cli(capsys, "generate", "x", "-b", "bad", "--debug")
    assert (
        code == 1
        and "Traceback" in err
        and err.endswith("imagen: mock backend failed as configured: boom\n")
    )


def test_backends_lists_instances_and_types(capsys, isolated_env):
    write_config(
        isolated_env,
        "default_backend: slow\nbackends:\n  slow: {type: mock, latency_s: 2}\n  flux: {type: comfyui}\n",
    )
    code, out, _ = run_cli(capsys, "backends", "--json")
    assert code == 0
    report = json.loads(out)
    by_name = {i["name"]: i for i in report["instances"]}
    assert report["default"] == "slow" and by_name["slow"]["default"]
    assert by_name["slow"]["settings"]["latency_s"] == 2.0
    assert "unknown backend type 'comfyui'" in by_name["flux"]["problem"]
    assert by_name["mock"]["settings"] == {
        "latency_s": 0.0,
        "fail": None,
        "model": "mock-procedural-v1",
        "cost_usd": 0.0,
    }
    assert report["types"] == [{"name": "mock", "plugin": "plugin 'mock' (imagen_mock)"}]
    code, out, _ = run_cli(capsys, "backends")
    assert code == 0 and " * slow" in out and "unknown backend type 'comfyui'" in out


def test_plugins_lists_builtins_and_hooks(capsys):
    code, out, _ = run_cli(capsys, "plugins", "--json")
    assert code == 0
    report = json.loads(out)
    names = {p["name"]: p for p in report["plugins"]}
    assert names["naming"]["builtin"] and names["naming"]["hooks"] == ["naming_fields"]
    assert names["mock"]["hooks"] == ["register_backends"]
    assert report["failed"] == []


def test_config_init_validate_path(capsys, isolated_env):
    code, sample, _ = run_cli(capsys, "config", "init")
    assert code == 0 and "default_backend: mock" in sample
    path = write_config(isolated_env, sample)
    assert run_cli(capsys, "config", "validate")[:2] == (0, f"{path}: ok\n")
    code, out, _ = run_cli(capsys, "config", "path")
    assert out.splitlines() == [str(path), "exists (chosen by $XDG_CONFIG_HOME)"]
    path.write_text(sample.replace("latency_s: 3.0", "latency_s: slow") + "backends2: 1\n")
    code, _, err = run_cli(capsys, "config", "validate")
    assert code == 1
    assert "backends.mock-slow.latency_s: expected a number, got 'slow'" in err
    assert "backends2: unknown key (did you mean 'backends'?)" in err
    assert err.splitlines()[-1] == f"{path}: 2 problem(s)"


def test_config_validate_reports_uninstalled_types(capsys, isolated_env):
    write_config(isolated_env, "backends:\n  flux: {type: comfyui}\n")
    code, _, err = run_cli(capsys, "config", "validate")
    assert code == 1 and "pip install imagen-comfyui" in err


def test_config_path_without_file(capsys, isolated_env):
    code, out, _ = run_cli(capsys, "config", "path")
    assert code == 0
    assert out.splitlines()[0] == str(isolated_env / ".config" / "imagen.yaml")
    assert "does not exist" in out and "imagen config init >" in out


@pytest.mark.parametrize("how", ["--config", "IMAGEN_CONFIG"])
def test_config_path_refuses_a_named_file_that_is_missing(capsys, monkeypatch, tmp_path, how):
    missing = tmp_path / "missing.yaml"
    if how == "--config":
        code, out, err = run_cli(capsys, "config", "path", "--config", str(missing))
    else:
        monkeypatch.setenv("IMAGEN_CONFIG", str(missing))
        code, out, err = run_cli(capsys, "config", "path")
    source = "--config" if how == "--config" else "$IMAGEN_CONFIG"
    assert (code, out) == (2, "")
    assert err == (
        f"imagen: config file {missing} does not exist (named by {source}); "
        "create one with `imagen config init > FILE`\n"
    )
    # as every other command says
    assert run_cli(capsys, "backends", *(["--config", str(missing)] if how == "--config" else []))[
        ::2
    ] == (2, err)


def test_version(capsys):
    from imagen_core import __version__

    assert run_cli(capsys, "--version")[:2] == (0, f"imagen {__version__}\n")
    code, out, _ = run_cli(capsys, "version")
    assert code == 0
    assert out.startswith(f"imagen {__version__} (Python 3.")


def test_emoji_prompt_generates(capsys, output_dir):
    code, out, _ = run_cli(capsys, "generate", "🦊🌙", "--size", "32x32")
    assert code == 0 and Path(out.strip()).name.split("-", 1)[1].startswith("img-")


def test_default_backend_without_its_plugin_says_what_to_install(capsys, pm):
    pm.unregister(name="mock")
    code, _, err = run_cli(capsys, "generate", "x")
    assert code == 2
    assert err == (
        "imagen: unknown backend 'mock' (if a plugin provides it, install it: "
        "pip install imagen-mock); configured are none (see `imagen backends`)\n"
    )


@pytest.mark.parametrize(
    ("args", "dist"),
    [
        (["serve"], "imagen-web"),
        (["serve", "--addr", "0.0.0.0:1"], "imagen-web"),
        (["comfyui", "workflows"], "imagen-comfyui"),
        (["supabase", "schema"], "imagen-supabase"),
    ],
)
def test_a_first_party_plugin_command_says_which_package_to_install(capsys, args, dist):
    # The test's plugin manager holds only the built-ins and the mock backend.
    code, out, err = run_cli(capsys, *args)
    assert (code, out) == (2, "")
    assert err == (
        f"imagen: `imagen {args[0]}` comes with the {dist} plugin: pip install {dist} "
        "(see `imagen --help`)\n"
    )


def test_other_unknown_commands_keep_clicks_message(capsys):
    code, _, err = run_cli(capsys, "serv")
    assert code == 2 and "No such command 'serv'" in err and "pip install" not in err


@pytest.mark.parametrize(
    "text",
    [
        "default_backend: !!int comfyui\n",
        'output:\n  naming: "{slug}\\0.{ext}"\n',
        "backends:\n  mock: {type: mock, latency_s: .nan}\n",
    ],
)
def test_a_hostile_config_is_exit_2_from_every_command(capsys, isolated_env, text, output_dir):
    path = write_config(isolated_env, text)
    for args in (["generate", "x", "--size", "8x8"], ["backends"], ["submit", "x"], ["usage"]):
        code, out, err = run_cli(capsys, *args)
        assert (code, out) == (2, ""), (args, err)
        assert f"{path}:" in err and "internal error" not in err
    code, _, err = run_cli(capsys, "config", "validate")
    assert code == 1 and f"{path}:" in err
    assert not output_dir.exists()


def test_validate_warns_of_an_unknown_naming_placeholder(capsys, isolated_env):
    path = write_config(isolated_env, 'output:\n  naming: "{date}/{sleg}-{seed}.{ext}"\n')
    code, out, err = run_cli(capsys, "config", "validate")
    assert (code, out) == (0, f"{path}: ok\n")
    assert err == (
        "imagen: warning: output.naming: unknown placeholder {sleg} (did you mean 'slug'?) "
        "stays as it is in file names; known: date, time, slug, seed, backend, ext\n"
    )


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1024x768", (1024, 768)),
        (" 8 X 16 ", (8, 16)),
        ("32×24", (32, 24)),
        ("123456789x1", (123456789, 1)),
        ("12x", None),
        ("1x2x3", None),
        ("1234567890x1", None),
        ("-1x2", None),
        ("²x2", None),  # a digit, but not a decimal one
        ("1_0x2", None),
    ],
)
def test_size_accepts_width_x_height_and_nothing_else(text, size):
    import click

    from imagen_core.cli.options import parse_size

    if size is None:
        with pytest.raises(click.BadParameter, match="is not WIDTHxHEIGHT"):
            parse_size(None, None, text)  # type: ignore[arg-type]
    else:
        assert parse_size(None, None, text) == size  # type: ignore[arg-type]
