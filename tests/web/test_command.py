"""`imagen serve`: its flags, the refusals before anything listens, and a cheap --help."""

from __future__ import annotations

import socket

import pytest

import imagen_web
from tests.helpers import cli_imports, registered, run_cli, write_config


@pytest.fixture(autouse=True)
def web_plugin(pm):
    with registered(pm, imagen_web, "web"):
        yield


def test_help_names_every_option(capsys):
    code, out, _ = run_cli(capsys, "serve", "--help")
    assert code == 0
    for text in (
        "--addr HOST:PORT",
        "[default: 127.0.0.1:8080]",
        "--token TOKEN",
        "IMAGEN_SERVE_TOKEN",
        "--usage-source",
        "--request-timeout SECONDS",
        "[default: 10.0; x>0]",
        "--max-connections N",
        "[default: 256; x>=1]",
        ":8080 for every interface",
        "--config",
        "64 KiB",
        "4000 characters",
    ):
        assert text in " ".join(out.split()), text  # help wraps lines at any space
    assert "serve" in run_cli(capsys, "--help")[1]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ["--addr", "0.0.0.0:8080"],
            {},
            "--addr 0.0.0.0 is reachable from other machines: set a token with --token "
            "or IMAGEN_SERVE_TOKEN (or listen on 127.0.0.1)",
        ),
        (
            ["--addr", ":8080"],
            {},
            "--addr without a host (every interface) is reachable from other machines",
        ),
        (["--addr", "192.168.1.20:80", "--token", "short"], {}, "--token must be at least 16"),
        (["--request-timeout", "0"], {}, "--request-timeout"),
        (["--request-timeout", "nan"], {}, "nan is not a number of seconds; give one like 10"),
        (["--request-timeout", "inf"], {}, "inf is not a number of seconds; give one like 10"),
        (["--max-connections", "0"], {}, "--max-connections"),
        (["--addr", "0.0.0.0:80"], {"IMAGEN_SERVE_TOKEN": "tiny"}, "--token must be at least 16"),
        (["--addr", "8080"], {}, "--addr '8080' is not HOST:PORT, e.g. 127.0.0.1:8080"),
        (["--usage-source", "nope"], {}, "unknown usage source 'nope'"),
    ],
)
def test_refusals_are_one_line_exit_2(capsys, monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, "serve", *args)
    assert (code, out) == (2, "")
    assert err.startswith("imagen: ") and message in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", ""])
def test_a_taken_port_is_one_line_exit_1(capsys, host):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        token = ["--token", "a-token-of-16-chars-or-more"] if not host else []
        code, _, err = run_cli(capsys, "serve", "--addr", f"{host}:{port}", *token)
    assert code == 1
    assert err.startswith(f"imagen: cannot listen on {host}:{port}: ")
    assert err.rstrip().endswith("(pick another with --addr)") and len(err.splitlines()) == 1


def test_a_config_problem_stops_it_before_listening(capsys, isolated_env):
    path = write_config(isolated_env, "queue: {type: nosuchqueue}\n")
    code, _, err = run_cli(capsys, "serve", "--config", str(path))
    assert code == 2 and "nosuchqueue" in err


@pytest.mark.parametrize("args", [("--help",), ("serve", "--help")])
def test_help_does_not_import_the_web_stack(args):
    modules, out = cli_imports(*args, plugins="imagen-mock,imagen-web")
    assert "serve" in out
    assert "imagen_web" in modules
    assert not modules & {"starlette", "uvicorn", "anyio", "attrs", "cattrs"}
