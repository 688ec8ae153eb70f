"""The plugin manager: built-in plugins plus entry points of group ``imagen``.

Each entry point is loaded inside its own try/except (pluggy's
``load_setuptools_entrypoints`` stops at the first failure): a broken plugin is
reported once on stderr and every command goes on with the rest.

Environment:
  IMAGEN_LOAD_PLUGINS     comma list of distribution names to load ("" = none)
  IMAGEN_DISABLE_PLUGINS  comma list of plugin names to block (built-ins too)
  IMAGEN_TRACE_PLUGINS=1  print every hook call on stderr

This module runs for ``imagen --help``: keep its imports light.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import FunctionType, MethodType, ModuleType
from typing import TYPE_CHECKING, Any, NamedTuple

import pluggy

from imagen_core import entrypoints, hookspecs
from imagen_core._version import __version__
from imagen_core.entrypoints import normalise
from imagen_core.errors import PluginError, describe

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

ENTRY_POINT_GROUP = "imagen"
BUILTINS = (
    "imagen_core.builtins.naming",
    "imagen_core.builtins.tmux_preview",
    "imagen_core.builtins.ledger",
    "imagen_core.builtins.sqlite_queue",
)


class PluginInfo(NamedTuple):
    name: str
    distribution: str
    version: str
    module: str
    builtin: bool = False

    @property
    def label(self) -> str:
        return f"{self.distribution} {self.version}".strip()


class PluginFailure(NamedTuple):
    name: str
    distribution: str
    version: str
    error: str


class ImagenPluginManager(pluggy.PluginManager):
    """pluggy's manager plus where each plugin came from and which ones failed."""

    def __init__(self) -> None:
        super().__init__("imagen")
        self.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self.failures: list[PluginFailure] = []

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        """pluggy's answer, without its costly lookup for what cannot be a hook:
        in a module (every plugin of an entry point is one), only a function or
        a method can be, and a module's names are its ``__dict__``'s. pluggy
        looks each name up with inspect.getattr_static (about 5 us), and the
        plugins of one start have some 230 names."""
        if isinstance(plugin, ModuleType) and not isinstance(
            plugin.__dict__.get(name), (FunctionType, MethodType, staticmethod, classmethod)
        ):
            return None
        return super().parse_hookimpl_opts(plugin, name)

    def call_contained(
        self, hook_name: str, plugin: object, purge: Callable[[], None], **kwargs: Any
    ) -> None:
        """One plugin's implementation of a ``register_*`` hook, contained: an
        exception (but a PluginError, the user's to settle) undoes what it
        registered (``purge``) and skips the plugin, reported once (``skip``),
        as a plugin that fails to import is."""
        impls = getattr(self.hook, hook_name).get_hookimpls()
        others = [other.plugin for other in impls if other.plugin is not plugin]
        caller = self.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            caller(**kwargs)
        except PluginError:
            raise
        except Exception as exc:
            purge()
            self.skip(plugin, f"{hook_name} raised {describe(exc)}")

    def skip(self, plugin: object, error: str) -> None:
        """Unregister a plugin whose hook failed, reporting it once as a failed
        plugin (``imagen plugins`` lists it with the error)."""
        info = self.describe(plugin)
        self.unregister(plugin)
        self.info.pop(info.name, None)
        self.failures.append(PluginFailure(info.name, info.distribution, info.version, error))
        hint = (
            f", or `pip uninstall {info.distribution}`" if info.version and not info.builtin else ""
        )
        _warn(f"plugin {info.label} failed: {error} (skipped; fix it{hint})")

    def describe(self, plugin: object) -> PluginInfo:
        name = self.get_name(plugin) or repr(plugin)
        if name in self.info:
            return self.info[name]
        # Registered directly on the manager (tests, scripts): no distribution.
        module = getattr(plugin, "__name__", None) or type(plugin).__module__
        return PluginInfo(name, f"plugin {name!r} ({module})", "", module)


def _env_list(name: str, *, dist_names: bool = True) -> set[str] | None:
    """The comma list in $name (None when unset). Distribution names are
    normalised (``imagen_foo`` = ``imagen-foo``); plugin names are taken as given."""
    value = os.environ.get(name)
    if value is None:
        return None
    items = (item.strip() for item in value.split(","))
    return {normalise(item) if dist_names else item for item in items if item}


def _warn(message: str) -> None:
    sys.stderr.write(f"imagen: {message}\n")


def load_entry_points(pm: ImagenPluginManager) -> None:
    wanted = _env_list("IMAGEN_LOAD_PLUGINS")
    found: set[str] = set()
    for ep in entrypoints.find(ENTRY_POINT_GROUP, only=wanted):
        dist_name, version = ep.dist, ep.version
        found.add(dist_name)
        if wanted is not None and dist_name not in wanted:
            continue
        if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
            continue
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
        except Exception as exc:  # a broken plugin must not take imagen down
            pm.failures.append(PluginFailure(ep.name, dist_name, version, describe(exc)))
            _warn(
                f"plugin {dist_name} {version} failed to load: {describe(exc)} "
                f"(skipped; fix it, or `pip uninstall {dist_name}`)"
            )
            continue
        module = getattr(plugin, "__name__", ep.value.partition(":")[0])
        pm.info[ep.name] = PluginInfo(ep.name, dist_name, version, module)
    for missing in sorted((wanted or set()) - found):
        _warn(f"IMAGEN_LOAD_PLUGINS names {missing}, which is not installed")


def _reject_unknown_hooks(pm: ImagenPluginManager) -> None:
    """check_pending(), but a misspelled hook only disables the plugin that has it."""
    while True:
        try:
            pm.check_pending()
            return
        except pluggy.PluginValidationError as exc:
            info = pm.describe(exc.plugin)
            unknown = [
                caller.name
                for caller in pm.get_hookcallers(exc.plugin) or []
                if caller.spec is None
            ]
            pm.unregister(exc.plugin)
            import difflib

            known = [
                name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "imagen_spec")
            ]
            reasons = []
            for name in unknown or ["?"]:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                reasons.append(f"{name} is not an imagen hook{hint}")
            error = "; ".join(reasons)
            pm.failures.append(PluginFailure(info.name, info.distribution, info.version, error))
            _warn(f"plugin {info.label} skipped: {error}")


def register_builtins(pm: ImagenPluginManager, modules: Iterable[str] = BUILTINS) -> None:
    for module_name in modules:
        name = module_name.rpartition(".")[2]
        if pm.is_blocked(name):
            continue
        module: ModuleType = importlib.import_module(module_name)
        pm.register(module, name=name)
        pm.info[name] = PluginInfo(name, "imagen-core", __version__, module_name, builtin=True)


def create_plugin_manager(*, entry_points: bool = True) -> ImagenPluginManager:
    pm = ImagenPluginManager()
    if os.environ.get("IMAGEN_TRACE_PLUGINS", "") not in ("", "0"):
        pm.trace.root.setwriter(lambda text: sys.stderr.write(f"imagen trace: {text}"))
        pm.enable_tracing()
    for name in _env_list("IMAGEN_DISABLE_PLUGINS", dist_names=False) or ():
        pm.set_blocked(name)
    register_builtins(pm)
    if entry_points:
        load_entry_points(pm)
    _reject_unknown_hooks(pm)
    return pm


_pm: ImagenPluginManager | None = None


def get_plugin_manager() -> ImagenPluginManager:
    """The process-wide plugin manager, created on first use."""
    global _pm
    if _pm is None:
        _pm = create_plugin_manager()
    return _pm


def reset_plugin_manager(pm: ImagenPluginManager | None = None) -> None:
    """Replace the process-wide manager (tests use this to start from a clean one)."""
    global _pm
    _pm = pm
