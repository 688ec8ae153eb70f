from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

from imagen_core import Request, Session, generate, hookimpl
from imagen_core.errors import PluginError
from imagen_core.plugins import create_plugin_manager, reset_plugin_manager
from imagen_core.registry import collect
from tests.helpers import make_dist, registered, run_cli

GOOD = """
from imagen_core import hookimpl, Result

class Solid:
    def __init__(self, config):
        pass
    def generate(self, request, progress):
        import io
        from PIL import Image
        buf = io.BytesIO()
        Image.new("RGB", (request.width, request.height), "teal").save(buf, "PNG")
        return Result(image=buf.getvalue(), seed=request.seed or 4, model="solid")

@hookimpl
def register_backends(register):
    register("solid", Solid)
"""

BROKEN = "import this_module_does_not_exist_anywhere\n"

MISSPELLED = """
from imagen_core import hookimpl

@hookimpl
def register_backend(register):
    register("never", object)
"""

DUPLICATE = """
from imagen_core import hookimpl

@hookimpl
def register_backends(register):
    register("solid", object)
"""


LAZY = """
from imagen_core import hookimpl

@hookimpl
def register_backends(register):
    register("lazy", object)

@hookimpl
def register_sinks(register):
    import lazy_sdk_that_is_not_installed  # a lazy import, as the docs recommend
"""


COMMANDS_RAISE = """
from imagen_core import hookimpl

@hookimpl
def register_backends(register):
    register("cmdlazy", object)

@hookimpl
def register_commands(cli):
    import click_extras_that_are_not_installed
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in (
        "good_plugin",
        "broken_plugin",
        "misspelled_plugin",
        "duplicate_plugin",
        "lazy_plugin",
        "cmd_plugin",
    ):
        sys.modules.pop(name, None)


def load_only(monkeypatch, *dists: str):
    monkeypatch.setenv("IMAGEN_LOAD_PLUGINS", ",".join(dists))
    manager = create_plugin_manager()
    reset_plugin_manager(manager)
    return manager


def test_broken_plugin_is_reported_once_and_the_rest_work(site, monkeypatch, capsys, tmp_path):
    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-broken", "broken_plugin", BROKEN, version="0.9")
    manager = load_only(monkeypatch, "imagen-good", "imagen-broken")
    err = capsys.readouterr().err
    assert err.count("imagen-broken") >= 1 and len(err.strip().splitlines()) == 1
    assert err.startswith("imagen: plugin imagen-broken 0.9 failed to load: ModuleNotFoundError")
    assert [f.distribution for f in manager.failures] == ["imagen-broken"]
    record = generate(Request("x", backend="solid", width=8, height=8), output=tmp_path / "o.png")
    assert record.result.model == "solid"
    assert capsys.readouterr().err == ""  # not reported again
    assert collect(manager).backends["solid"].owner == "imagen-good 1.2.3"


def test_a_register_hook_that_raises_is_contained_like_a_failed_import(
    site, monkeypatch, capsys, tmp_path
):
    from imagen_core.terminal import plugins_report

    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-lazy", "lazy_plugin", LAZY, version="0.3")
    manager = load_only(monkeypatch, "imagen-good", "imagen-lazy")
    assert capsys.readouterr().err == ""  # it imported fine
    registry = collect(manager)
    err = capsys.readouterr().err
    assert err == (
        "imagen: plugin imagen-lazy 0.3 failed: register_sinks raised ModuleNotFoundError: "
        "No module named 'lazy_sdk_that_is_not_installed' (skipped; fix it, or "
        "`pip uninstall imagen-lazy`)\n"
    )
    # Skipped with what it had registered; the rest works, and it is said once.
    assert "lazy" not in registry.backends and "solid" in registry.backends
    assert not manager.has_plugin("lazy_plugin")
    record = generate(Request("x", backend="solid", width=8, height=8), output=tmp_path / "o.png")
    assert record.result.model == "solid"
    collect(manager)
    assert capsys.readouterr().err == ""
    report = plugins_report(manager)
    assert [(f["distribution"], f["version"]) for f in report["failed"]] == [("imagen-lazy", "0.3")]
    assert "register_sinks raised ModuleNotFoundError" in report["failed"][0]["error"]
    assert "lazy_plugin" not in [p["name"] for p in report["plugins"]]


def test_a_raising_register_commands_leaves_every_command_working(site, monkeypatch, capsys):
    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-cmd", "cmd_plugin", COMMANDS_RAISE, version="0.5")
    load_only(monkeypatch, "imagen-good", "imagen-cmd")

    run = functools.partial(run_cli, capsys)
    code, out, err = run("plugins")
    assert code == 0
    assert err == (
        "imagen: plugin imagen-cmd 0.5 failed: register_commands raised ModuleNotFoundError: "
        "No module named 'click_extras_that_are_not_installed' (skipped; fix it, or "
        "`pip uninstall imagen-cmd`)\n"
    )
    assert "imagen-cmd 0.5 (FAILED)\n    register_commands raised ModuleNotFoundError" in out
    assert "imagen-good 1.2.3\n    name: good_plugin  hooks: register_backends\n" in out
    assert "    registers: backend solid\n" in out
    code, out, err = run("nosuchcommand")
    assert code == 2 and "No such command" in err and "internal error" not in err
    code, out, err = run("backends")
    assert code == 0 and "solid" in out and "cmdlazy" not in out and err == ""


def test_the_plugins_report_shows_what_each_plugin_registered(site, monkeypatch):
    from imagen_core.terminal import plugins_report

    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-dupe", "duplicate_plugin", DUPLICATE, version="2.0")
    manager = load_only(monkeypatch, "imagen-good", "imagen-dupe")
    registers = {p["name"]: p["registers"] for p in plugins_report(manager)["plugins"]}
    # Both registrations of the conflicting name show, so the conflict is visible.
    assert registers["good_plugin"] == {"backend": ["solid"]}
    assert registers["duplicate_plugin"] == {"backend": ["solid"]}
    assert registers["ledger"] == {"sink": ["ledger"]}
    assert registers["sqlite_queue"] == {"queue": ["sqlite"]}
    assert registers["naming"] == {}


def test_load_plugins_selects_distributions(site, monkeypatch, capsys):
    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-broken", "broken_plugin", BROKEN)
    manager = load_only(monkeypatch, "imagen_good", "imagen-missing")  # names normalised
    assert manager.has_plugin("good_plugin") and not manager.has_plugin("broken_plugin")
    assert (
        "IMAGEN_LOAD_PLUGINS names imagen-missing, which is not installed"
        in capsys.readouterr().err
    )
    none = load_only(monkeypatch)  # IMAGEN_LOAD_PLUGINS="" loads no entry point
    assert [name for name, _ in none.list_name_plugin()] == [
        "naming",
        "tmux_preview",
        "ledger",
        "sqlite_queue",
    ]


def test_misspelled_hook_disables_only_that_plugin(site, monkeypatch, capsys):
    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-typo", "misspelled_plugin", MISSPELLED)
    manager = load_only(monkeypatch, "imagen-good", "imagen-typo")
    err = capsys.readouterr().err
    assert err == (
        "imagen: plugin imagen-typo 1.2.3 skipped: register_backend is not an imagen hook "
        "(did you mean register_backends?)\n"
    )
    assert not manager.has_plugin("misspelled_plugin")
    assert "solid" in collect(manager).backends


def test_two_plugins_registering_one_type_name_both(site, monkeypatch):
    make_dist(site, "imagen-good", "good_plugin", GOOD)
    make_dist(site, "imagen-dupe", "duplicate_plugin", DUPLICATE, version="2.0")
    manager = load_only(monkeypatch, "imagen-good", "imagen-dupe")
    with pytest.raises(PluginError) as info:
        collect(manager)
    message = str(info.value)
    assert "backend type 'solid' is registered twice" in message
    assert "imagen-good 1.2.3" in message and "imagen-dupe 2.0" in message
    assert info.value.exit_code == 2


def test_trace_prints_hook_calls(site, monkeypatch, capsys):
    monkeypatch.setenv("IMAGEN_TRACE_PLUGINS", "1")
    manager = load_only(monkeypatch)
    import imagen_mock

    manager.register(imagen_mock, name="mock")
    collect(manager)
    err = capsys.readouterr().err
    assert "imagen trace:" in err and "register_backends" in err


def test_plugins_can_be_disabled_by_name_builtins_too(site, monkeypatch):
    make_dist(site, "imagen-good", "good_plugin", GOOD)
    monkeypatch.setenv(
        "IMAGEN_DISABLE_PLUGINS", "naming, good_plugin,tmux_preview,ledger,sqlite_queue"
    )
    manager = load_only(monkeypatch, "imagen-good")
    assert not manager.has_plugin("naming") and not manager.has_plugin("good_plugin")
    from imagen_core.terminal import plugins_report

    assert plugins_report(manager)["plugins"] == []


def test_register_rejects_bad_names_and_non_attrs_config(pm):
    class Bad:
        @hookimpl
        def register_backends(self, register):
            register("Has Spaces", object)

    class BadConfig:
        @hookimpl
        def register_backends(self, register):
            register("ok", object, config=dict)

    with registered(pm, Bad(), "bad"), pytest.raises(PluginError, match="named 'Has Spaces'"):
        collect(pm)
    with registered(pm, BadConfig(), "bad"), pytest.raises(PluginError, match="not an attrs class"):
        collect(pm)


def test_a_config_class_given_lazily_is_imported_on_first_use_and_checked(pm):
    import attrs

    @attrs.frozen
    class Settings:
        size: int = 3

    loads: list[str] = []

    def settings() -> type:
        loads.append("settings")
        return Settings

    class Lazy:
        @hookimpl
        def register_backends(self, register):
            register("lazy", object, config=settings)
            register("wrong", object, config=lambda: dict)

    with registered(pm, Lazy(), "lazy"):
        registry = collect(pm)
        assert loads == []  # collecting imports no config module
        assert registry.backends["lazy"].config is Settings
        assert registry.backends["lazy"].config is Settings
        assert loads == ["settings"]  # once
        with pytest.raises(PluginError, match=r"type 'wrong' with config=.*not an attrs class"):
            _ = registry.backends["wrong"].config


def test_backend_that_fails_to_start_names_itself(pm, tmp_path):
    class Plugin:
        @hookimpl
        def register_backends(self, register):
            def factory(config):
                raise RuntimeError("no GPU found")

            register("gpu", factory)

    with registered(pm, Plugin(), "gpu"), pytest.raises(Exception) as info:
        Session().generate(Request("x", backend="gpu"), output=tmp_path / "x.png")
    assert str(info.value) == "backend 'gpu' (type gpu) could not start: RuntimeError: no GPU found"


def test_a_module_plugin_gives_its_functions_and_bound_methods_as_hooks_and_nothing_else():
    # The manager skips pluggy's lookup for a module's names that cannot be
    # hooks; what pluggy would find must still be found.
    import types

    from imagen_core import hookimpl
    from imagen_core.plugins import ImagenPluginManager

    class Holder:
        @hookimpl
        def register_sinks(self, register):
            register("held", object)

    @hookimpl
    def register_backends(register):
        register("plain", object)

    module = types.ModuleType("imagen_fake_plugin")
    module.register_backends = register_backends
    module.register_sinks = Holder().register_sinks
    module.register_queues = Holder  # a class is never a hook
    module.naming_fields = 3
    pm = ImagenPluginManager()
    pm.register(module, name="fake")
    assert [i.plugin_name for i in pm.hook.register_backends.get_hookimpls()] == ["fake"]
    assert [i.plugin_name for i in pm.hook.register_sinks.get_hookimpls()] == ["fake"]
    assert pm.hook.register_queues.get_hookimpls() == []
    assert pm.hook.naming_fields.get_hookimpls() == []
