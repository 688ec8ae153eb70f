"""imagen: generate images from a prompt through pluggable backends and sinks.

The public API. Names are imported on first use, so that ``import imagen_core``
(which every CLI start does) costs nothing until something is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from imagen_core._version import __version__
from imagen_core.exports import lazy

if TYPE_CHECKING:
    from imagen_core.comparison import Comparison, Outcome, compare
    from imagen_core.config import Config, load, require_env, setting
    from imagen_core.errors import (
        BackendError,
        BackendUnavailable,
        ConfigError,
        ImagenError,
        InvalidInput,
        InvalidRequest,
        MissingEnvError,
        OutputError,
        PluginError,
        Unsupported,
        UsageError,
    )
    from imagen_core.hookspecs import hookimpl
    from imagen_core.models import (
        Backend,
        Capabilities,
        Estimate,
        Generation,
        ImageInput,
        Progress,
        Request,
        Result,
        Sink,
    )
    from imagen_core.notices import warn
    from imagen_core.pipeline import Session, generate
    from imagen_core.plugins import get_plugin_manager

_EXPORTS = {
    "hookimpl": "imagen_core.hookspecs",
    "Request": "imagen_core.models",
    "Result": "imagen_core.models",
    "Generation": "imagen_core.models",
    "Progress": "imagen_core.models",
    "Backend": "imagen_core.models",
    "Sink": "imagen_core.models",
    "ImageInput": "imagen_core.models",
    "Capabilities": "imagen_core.models",
    "Estimate": "imagen_core.models",
    "Session": "imagen_core.pipeline",
    "compare": "imagen_core.comparison",
    "Comparison": "imagen_core.comparison",
    "Outcome": "imagen_core.comparison",
    "generate": "imagen_core.pipeline",
    "Config": "imagen_core.config",
    "load": "imagen_core.config",
    "setting": "imagen_core.config",
    "require_env": "imagen_core.config",
    "get_plugin_manager": "imagen_core.plugins",
    "warn": "imagen_core.notices",
    "ImagenError": "imagen_core.errors",
    "UsageError": "imagen_core.errors",
    "ConfigError": "imagen_core.errors",
    "InvalidRequest": "imagen_core.errors",
    "InvalidInput": "imagen_core.errors",
    "Unsupported": "imagen_core.errors",
    "MissingEnvError": "imagen_core.errors",
    "PluginError": "imagen_core.errors",
    "BackendError": "imagen_core.errors",
    "BackendUnavailable": "imagen_core.errors",
    "OutputError": "imagen_core.errors",
}

__all__ = [
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "Capabilities",
    "Comparison",
    "Config",
    "ConfigError",
    "Estimate",
    "Generation",
    "ImageInput",
    "ImagenError",
    "InvalidInput",
    "InvalidRequest",
    "MissingEnvError",
    "Outcome",
    "OutputError",
    "PluginError",
    "Progress",
    "Request",
    "Result",
    "Session",
    "Sink",
    "Unsupported",
    "UsageError",
    "__version__",
    "compare",
    "generate",
    "get_plugin_manager",
    "hookimpl",
    "load",
    "require_env",
    "setting",
    "warn",
]


__getattr__ = lazy(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return sorted(__all__)
