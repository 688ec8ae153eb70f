"""What a CLI start imports: `--version` loads no plugin, `--help` nothing heavy."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import cli_imports

HEAVY = ("attrs", "cattrs", "ruamel", "PIL", "requests")


def imported(*args: str) -> set[str]:
    # Every installed plugin loads (no IMAGEN_LOAD_PLUGINS): none may import
    # anything heavy when imagen starts.
    return cli_imports(*args, plugins=None)[0]


def test_version_loads_no_plugin_and_no_plugin_machinery():
    modules = imported("--version")
    assert "pluggy" not in modules
    assert "imagen_mock" not in modules
    assert not modules & set(HEAVY)


@pytest.mark.parametrize("args", [("--help",), ("generate", "--help"), ("config", "--help")])
def test_help_loads_plugins_but_nothing_heavy(args):
    modules = imported(*args)
    assert "imagen_mock" in modules or args != ("--help",)
    assert not modules & set(HEAVY), modules & set(HEAVY)


def test_version_never_reaches_for_gettext_and_locale():
    # click translates its default --help/--version option texts with gettext,
    # which imports locale (~1.4 ms of a ~40 ms budget): imagen gives those
    # texts itself. (Rendering a help page does translate its headings.)
    assert "locale" not in imported("--version")


def test_a_generation_never_imports_locale(isolated_env):
    args = ("generate", "x", "--size", "8x8", "--no-sidecar")
    assert "locale" not in cli_imports(*args, plugins="imagen-mock")[0]


SHARED = {"imagen_core.cli.entry", "imagen_core.cli.options"}


def cli_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m.startswith("imagen_core.cli.")}


@pytest.mark.parametrize("args", [("--version",), ("--help",)])
def test_version_and_help_import_no_command_module(args):
    # `imagen --help` lists the built-in commands from the table in imagen_core.cli.
    assert cli_modules(imported(*args)) == SHARED


def test_a_command_imports_its_own_module_only(isolated_env):
    args = ("generate", "x", "--size", "8x8", "--no-sidecar")
    modules = cli_imports(*args, plugins="imagen-mock")[0]
    assert cli_modules(modules) == SHARED | {"imagen_core.cli.generate"}
    assert cli_modules(imported("config", "path")) == SHARED | {"imagen_core.cli.config"}


UNUSED_PLUGIN_MODULES = """
import json, sys
from imagen_core.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
sys.stderr.write(json.dumps(sorted(sys.modules)) + "\\n")
"""


def test_a_mock_generation_imports_no_module_of_the_plugins_it_does_not_use(isolated_env):
    # Every installed plugin loads, no config file: the config classes of the
    # comfyui, fal, openai and replicate backend types are not imported for a mock
    # generation, nor, with nothing of Supabase set and cloud sync not on, any
    # module of the supabase sink (it would have nothing to do).
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE")}
    env.pop("IMAGEN_LOAD_PLUGINS", None)
    env.pop("IMAGEN_CLOUD_SYNC", None)
    proc = subprocess.run(
        [sys.executable, "-c", UNUSED_PLUGIN_MODULES, "generate", "x", "--size", "8x8"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    modules = set(json.loads(proc.stderr.strip().splitlines()[-1]))
    assert "imagen_mock.backend" in modules
    unused = {
        m
        for m in modules
        if m.startswith(("imagen_comfyui.", "imagen_fal.", "imagen_replicate.", "imagen_openai."))
        or m.startswith("imagen_supabase.")
    }
    assert unused == set()


def _imported_by(*args: str) -> set[str]:
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE")}
    env.pop("IMAGEN_LOAD_PLUGINS", None)  # every installed plugin loads
    proc = subprocess.run(
        [sys.executable, "-c", UNUSED_PLUGIN_MODULES, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return set(json.loads(proc.stderr.strip().splitlines()[-1]))


# Registering a type never imports its module: only a command that uses the type does.
TYPE_MODULES = (
    "imagen_core.ledger",
    "imagen_core.sqlite_queue",
    "imagen_mock.backend",
    "imagen_postgres.settings",
    "imagen_supabase.settings",
    "imagen_supabase.sink",
)


def test_listing_jobs_imports_no_backend_or_sink_module(isolated_env):
    modules = _imported_by("jobs", "--limit", "1")
    assert "imagen_core.sqlite_queue" in modules
    assert modules & set(TYPE_MODULES) == {"imagen_core.sqlite_queue"}
    assert "imagen_core.pipeline" in modules  # the session; but not what generates:
    assert not modules & {"PIL", "hashlib", "imagen_core.provenance.embed"}
    # Its table needs imagen_core.columns, not the terminal module's attrs classes.
    assert "imagen_core.columns" in modules
    assert "imagen_core.terminal" not in modules


def test_raw_usage_imports_the_ledger_and_no_other_type_module(isolated_env):
    modules = _imported_by("usage", "--raw")
    assert modules & set(TYPE_MODULES) == {"imagen_core.ledger"}
    # The session it opens does not build the request and result classes.
    assert "imagen_core.pipeline" in modules
    assert "imagen_core.models" not in modules


def test_a_generation_without_input_images_never_imports_the_inputs_module(isolated_env):
    # Reading and checking input files (imagen_core.inputs) is for --image/--mask only;
    # a plain generation asks no price either (no --dry-run, no --max-cost).
    modules = _imported_by("generate", "x", "--size", "8x8", "--no-sidecar")
    assert "imagen_mock.backend" in modules
    assert "imagen_core.inputs" not in modules


def test_a_generation_from_text_builds_no_input_price_or_budget_class(isolated_env):
    # ImageInput (imagen_core.inputs), Estimate (imagen_core.estimate) and Budget
    # (imagen_core.budgets) are exported by models and config but built on first
    # use: a generation from text, asking no price, with no budget, needs none.
    modules = _imported_by("generate", "x", "--size", "8x8", "--no-sidecar")
    assert "imagen_mock.backend" in modules
    assert not modules & {"imagen_core.inputs", "imagen_core.estimate", "imagen_core.budgets"}


def test_a_generation_into_a_pipe_never_imports_the_terminal_module(isolated_env):
    # The progress bar and the summary line are for a terminal: a script that
    # captures the path (stdout not a TTY) does without imagen_core.terminal.
    modules = _imported_by("generate", "x", "--size", "8x8", "--no-sidecar")
    assert "imagen_mock.backend" in modules
    assert "imagen_core.terminal" not in modules


def _console_script(*args: str) -> subprocess.CompletedProcess[str]:
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).parent / "imagen"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE")}
    env["IMAGEN_LOAD_PLUGINS"] = "imagen-mock"
    return subprocess.run([str(script), *args], capture_output=True, text=True, env=env)


def test_the_console_script_ends_with_its_exit_code_and_its_ledger_closed(isolated_env, tmp_path):
    # `imagen` skips the interpreter's teardown (os._exit) once its exit handlers
    # ran: the exit code, the output and the ledger row are all still there, and
    # the ledger's connection was closed (SQLite removes the WAL on the last close).
    import sqlite3

    from imagen_core.ledger import default_path

    target = tmp_path / "a.png"
    done = _console_script("generate", "x", "--size", "8x8", "--no-sidecar", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{target}\n"
    assert target.stat().st_size > 0
    ledger = default_path()
    assert not ledger.with_name(ledger.name + "-wal").exists()
    db = sqlite3.connect(ledger)
    try:
        assert db.execute("SELECT status FROM usage").fetchall() == [("ok",)]
    finally:
        db.close()
    bad = _console_script("generate", "x", "--size", "12x")
    assert bad.returncode == 2
    assert "'12x' is not WIDTHxHEIGHT" in bad.stderr


def test_an_exit_handler_registered_before_the_console_script_still_runs(isolated_env, tmp_path):
    # A handler registered before main() (a sitecustomize's) would run after the
    # os._exit step and be skipped: with one there, the usual exit is kept.
    import os
    import sys

    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('late handler ran', flush=True))\n"
        "from imagen_core.cli import main\n"
        "sys.argv = ['imagen', 'generate', 'x', '--size', '8x8', '--no-sidecar', '-o', sys.argv[1]]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE")}
    env["IMAGEN_LOAD_PLUGINS"] = "imagen-mock"
    target = tmp_path / "a.png"
    done = subprocess.run(
        [sys.executable, "-c", code, str(target)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [str(target), "late handler ran"]


def test_the_fast_exit_is_taken_only_without_earlier_exit_handlers(monkeypatch):
    import atexit

    from imagen_core.cli import entry

    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 0)
    assert entry._no_exit_handlers_yet()
    monkeypatch.setattr(atexit, "_ncallbacks", lambda: 1)
    assert not entry._no_exit_handlers_yet()
    monkeypatch.delattr(atexit, "_ncallbacks")
    assert not entry._no_exit_handlers_yet()


@pytest.fixture
def collector():
    """The collector's thresholds and callbacks, put back after the test."""
    import gc

    threshold, callbacks, enabled = gc.get_threshold(), list(gc.callbacks), gc.isenabled()
    yield gc
    gc.set_threshold(*threshold)
    gc.callbacks[:] = callbacks
    if enabled:
        gc.enable()


def test_the_console_script_collects_first_after_its_start_then_as_usual(collector):
    from imagen_core import console

    collector.set_threshold(700, 10, 10)
    console.defer_collection()
    assert collector.get_threshold() == (console.START_COLLECTION_AFTER, 10, 10)
    collector.collect()  # the first collection, whatever starts it: the usual thresholds again
    assert collector.get_threshold() == (700, 10, 10)
    collector.set_threshold(500, 5, 5)  # and a later tuning is left alone
    collector.collect()
    assert collector.get_threshold() == (500, 5, 5)


@pytest.mark.parametrize("setting", ["disabled", "off", "higher"])
def test_a_collector_turned_off_or_tuned_is_left_as_it_is(collector, setting):
    from imagen_core import console

    before = (0, 10, 10) if setting == "off" else (200_000, 10, 10) if setting == "higher" else None
    if before is None:
        collector.disable()
        before = collector.get_threshold()
    else:
        collector.set_threshold(*before)
    callbacks = list(collector.callbacks)
    console.defer_collection()
    assert collector.get_threshold() == before
    assert collector.callbacks == callbacks


def test_only_the_console_script_defers_the_collector(isolated_env):
    # `imagen` (the installed script) starts with the deferred collector; a
    # script calling main(argv), or importing imagen_core.cli, does not.
    import os
    import sys

    show = "import atexit, gc; atexit.register(lambda: print(gc.get_threshold()[0], flush=True))\n"
    script = (
        show
        + "import sys; sys.argv = ['imagen', '--version']\nfrom imagen_core.console import main\nmain()\n"
    )
    called = show + "from imagen_core.cli import main\nmain(['--version'])\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPABASE")}
    for code, deferred in ((script, True), (called, False)):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stderr
        assert (done.stdout.splitlines()[-1] == "100000") is deferred, done.stdout
