"""What the plugins registered: backend and sink types, collected from the hooks."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.errors import PluginError
from imagen_core.values import value_eq, value_hash, value_repr

if TYPE_CHECKING:
    from imagen_core.plugins import ImagenPluginManager

# What a type's name may hold (checked by hand: a regex compiled at every start
# for a handful of names costs more than it checks).
_NAME_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_NAME_REST = _NAME_FIRST | {"_", "-"}


def _valid_name(name: object) -> bool:
    """``^[a-z0-9][a-z0-9_-]*$``."""
    return (
        isinstance(name, str)
        and name[:1] in _NAME_FIRST
        and all(char in _NAME_REST for char in name)
    )


@attrs.frozen(repr=False, eq=False)
class NoSettings:
    """The config class of a type that takes no keys besides ``type``."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash


# A type's config class, or a function without arguments that imports and returns
# it: then the module holding it is imported only when that type is used (an
# instance configured, the sample config written), not on every command.
ConfigSource = type | Callable[[], type]

# A sink type's ``default``: on by default (True), not (False), or a function
# given the session's Config that says whether to build it when imagen.yaml has
# no block for it (a sink that would only find nothing to do is then never
# imported nor built).
DefaultSource = bool | Callable[[Any], bool]


# Compared by identity, never by value: no __eq__/__hash__ to generate (each
# generated method is compiled at every start).
@attrs.define(eq=False, repr=False)
class Registration:
    __repr__ = value_repr

    kind: str
    name: str
    factory: Callable[[Any], Any]
    config_source: ConfigSource
    owner: str
    default: DefaultSource = False
    examples: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    _config: type | None = attrs.field(default=None, init=False, repr=False)

    @property
    def config(self) -> type:
        """The config class (imported now when it was registered lazily), checked."""
        if self._config is None:
            source = self.config_source
            found = source if isinstance(source, type) else source()
            _check_config(self.kind, self.name, self.owner, found, self.default)
            self._config = found
        return self._config


def _check_config(kind: str, name: str, owner: str, config: object, default: DefaultSource) -> None:
    if not (isinstance(config, type) and attrs.has(config)):
        raise PluginError(
            f"{owner} registers {kind} type {name!r} with config={config!r}, "
            "which is not an attrs class"
        )
    if (default is True or callable(default)) and any(
        f.default is attrs.NOTHING for f in attrs.fields(config)
    ):
        raise PluginError(
            f"{owner} registers {kind} type {name!r} as on by default, but its config "
            "has keys without defaults"
        )


class RegisterBackend(Protocol):
    """The ``register`` callback handed to ``register_backends``."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: ConfigSource | None = None,
        examples: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None: ...


class RegisterSink(Protocol):
    """The ``register`` callback handed to ``register_sinks``."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: ConfigSource | None = None,
        default: DefaultSource = False,
        examples: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None: ...


class RegisterQueue(Protocol):
    """The ``register`` callback handed to ``register_queues``."""

    def __call__(
        self, name: str, factory: Callable[[Any], Any], *, config: ConfigSource | None = None
    ) -> None: ...


class Registry:
    """The registered types by kind. Queue types are collected on first use:
    registering them imports their modules, which ``imagen generate`` never needs."""

    def __init__(
        self,
        backends: dict[str, Registration],
        sinks: dict[str, Registration],
        queues: dict[str, Registration] | Callable[[], dict[str, Registration]] | None = None,
    ) -> None:
        self.backends = backends
        self.sinks = sinks
        self._queues = queues if queues is not None else {}

    @property
    def queues(self) -> dict[str, Registration]:
        if callable(self._queues):
            self._queues = self._queues()
        return self._queues

    def of_kind(self, kind: str) -> dict[str, Registration]:
        return {"backend": self.backends, "sink": self.sinks, "queue": self.queues}[kind]


def _collector(kind: str, owner: str, into: dict[str, Registration]) -> Callable[..., None]:
    def register(
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: ConfigSource | None = None,
        default: DefaultSource = False,
        examples: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        if not _valid_name(name):
            raise PluginError(
                f"{owner} registers a {kind} type named {name!r}: "
                "names are lowercase letters, digits, '-' and '_'"
            )
        if not callable(factory):
            raise PluginError(f"{owner} registers {kind} type {name!r} with a non-callable")
        if config is not None and not isinstance(config, type) and not callable(config):
            raise PluginError(
                f"{owner} registers {kind} type {name!r} with config={config!r}, "
                "which is not an attrs class"
            )
        if not isinstance(default, bool) and not callable(default):
            raise PluginError(
                f"{owner} registers {kind} type {name!r} with default={default!r}: "
                "give True, False or a function of the Config that returns one"
            )
        if name in into:
            raise PluginError(
                f"{kind} type {name!r} is registered twice: by {into[name].owner} and by "
                f"{owner}; uninstall one of them or limit plugins with IMAGEN_LOAD_PLUGINS"
            )
        registration = Registration(
            kind, name, factory, config or NoSettings, owner, default, dict(examples or {})
        )
        if isinstance(config, type):
            # A class given as is is checked now; one given as a function (a
            # default sink's too) when the type is first used, so that commands
            # that never use it never import its module.
            registration.config  # noqa: B018
        into[name] = registration

    return register


def _call_per_plugin(
    pm: ImagenPluginManager,
    hook_name: str,
    kind: str,
    into: dict[str, Registration],
    purge: Callable[[str], None],
) -> None:
    """Call a register hook one plugin at a time, so each registration knows its
    owner (a conflict then names both distributions). Going through
    ``subset_hook_caller`` keeps tracing and hook monitoring working.

    A hook that raises (a lazy import of an SDK that is not installed, a bug) is
    contained like a plugin that fails to import: reported once with its
    distribution and version, the plugin skipped with whatever it registered
    (``purge``), every command going on with the rest. A PluginError (two
    plugins registering one name, a bad name) is the user's to settle and
    passes through."""
    impls = getattr(pm.hook, hook_name).get_hookimpls()
    for impl in impls:
        owner = pm.describe(impl.plugin).label
        register = _collector(kind, owner, into)
        pm.call_contained(hook_name, impl.plugin, partial(purge, owner), register=register)


KINDS = (("backend", "register_backends"), ("sink", "register_sinks"), ("queue", "register_queues"))


def registered_by_plugin(pm: ImagenPluginManager) -> dict[str, dict[str, list[str]]]:
    """What each plugin registers, by plugin name then kind: ``{"mock": {"backend":
    ["mock"]}}``. Each plugin registers into a list of its own, so two plugins
    registering one name both show it (that conflict is what this is for)."""
    found: dict[str, dict[str, list[str]]] = {}
    for kind, hook_name in KINDS:
        for impl in list(getattr(pm.hook, hook_name).get_hookimpls()):
            name = pm.get_name(impl.plugin) or repr(impl.plugin)
            mine: dict[str, Registration] = {}
            owner = pm.describe(impl.plugin).label
            try:
                register = _collector(kind, owner, mine)
                pm.call_contained(hook_name, impl.plugin, mine.clear, register=register)
            except PluginError:
                pass  # a bad name: the commands that need the types report it
            if pm.get_name(impl.plugin) is None:  # skipped: it failed
                found.pop(name, None)
            elif mine:
                found.setdefault(name, {})[kind] = sorted(mine)
    return found


def collect(pm: ImagenPluginManager) -> Registry:
    """Ask every plugin to register its types. Cheap: nothing heavy is imported."""
    backends: dict[str, Registration] = {}
    sinks: dict[str, Registration] = {}
    found: dict[str, Registration] = {}

    def purge(owner: str) -> None:
        for registered in (backends, sinks, found):
            for name in [n for n, r in registered.items() if r.owner == owner]:
                del registered[name]

    _call_per_plugin(pm, "register_backends", "backend", backends, purge)
    _call_per_plugin(pm, "register_sinks", "sink", sinks, purge)

    def queues() -> dict[str, Registration]:
        _call_per_plugin(pm, "register_queues", "queue", found, purge)
        return found

    return Registry(backends, sinks, queues)
