"""What the plugins registered: backend and sink types, collected from the hooks."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from imagen_core.errors import PluginError

if TYPE_CHECKING:
    from imagen_core.plugins import ImagenPluginManager

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


@attrs.frozen
class NoSettings:
    """The config class of a type that takes no keys besides ``type``."""


@attrs.frozen
class Registration:
    kind: str
    name: str
    factory: Callable[[Any], Any]
    config: type
    owner: str
    default: bool = False
    examples: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


class RegisterBackend(Protocol):
    """The ``register`` callback handed to ``register_backends``."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: type | None = None,
        examples: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None: ...


class RegisterSink(Protocol):
    """The ``register`` callback handed to ``register_sinks``."""

    def __call__(
        self,
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: type | None = None,
        default: bool = False,
        examples: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None: ...


@attrs.frozen
class Registry:
    backends: dict[str, Registration]
    sinks: dict[str, Registration]

    def of_kind(self, kind: str) -> dict[str, Registration]:
        return self.backends if kind == "backend" else self.sinks


def _collector(
    kind: str, pm: ImagenPluginManager, into: dict[str, Registration]
) -> Callable[..., None]:
    def register(
        name: str,
        factory: Callable[[Any], Any],
        *,
        config: type | None = None,
        default: bool = False,
        examples: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        owner = pm.owner_of(getattr(factory, "__module__", "") or "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise PluginError(
                f"{owner} registers a {kind} type named {name!r}: "
                "names are lowercase letters, digits, '-' and '_'"
            )
        if not callable(factory):
            raise PluginError(f"{owner} registers {kind} type {name!r} with a non-callable")
        if config is not None and not attrs.has(config):
            raise PluginError(
                f"{owner} registers {kind} type {name!r} with config={config!r}, "
                "which is not an attrs class"
            )
        if name in into:
            raise PluginError(
                f"{kind} type {name!r} is registered twice: by {into[name].owner} and by "
                f"{owner}; uninstall one of them or limit plugins with IMAGEN_LOAD_PLUGINS"
            )
        into[name] = Registration(
            kind, name, factory, config or NoSettings, owner, default, dict(examples or {})
        )

    return register


def collect(pm: ImagenPluginManager) -> Registry:
    """Ask every plugin to register its types. Cheap: nothing heavy is imported."""
    backends: dict[str, Registration] = {}
    sinks: dict[str, Registration] = {}
    pm.hook.register_backends(register=_collector("backend", pm, backends))
    pm.hook.register_sinks(register=_collector("sink", pm, sinks))
    return Registry(backends, sinks)
