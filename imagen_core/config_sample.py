"""The commented sample imagen.yaml printed by ``imagen config init``.

Built from the config classes themselves (each key's ``help`` metadata), so every
installed backend and sink type appears with every key explained, and the sample
always passes ``imagen config validate``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from imagen_core._version import __version__
from imagen_core.config import Config, OutputConfig

if TYPE_CHECKING:
    from imagen_core.registry import Registration, Registry

SAMPLE_STYLES = {
    "blog-header": "wide editorial illustration, flat colors, generous negative space: {prompt}",
    "photo": "professional photograph, natural light, 35mm, shallow depth of field: {prompt}",
}

# Plugins published from this repository, suggested when they are not installed.
KNOWN_PLUGINS = {
    "comfyui": ("imagen-comfyui", "a local ComfyUI server: FLUX, SD3.5, ..."),
    "replicate": ("imagen-replicate", "Replicate's cloud API, priced per image"),
    "fal": ("imagen-fal", "fal.ai's queue API: FLUX, Kontext, nano-banana, Seedream"),
    "openai": ("imagen-openai", "OpenAI's Images API and servers that speak it"),
}
# A block to show, commented out, for a known plugin that is not installed.
KNOWN_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "fal": (
        "flux-schnell-fal",
        {"model": "fal-ai/flux/schnell", "api_key_env": "FAL_KEY", "timeout_s": 300},
    ),
    "openai": (
        "gpt-image",
        {"model": "gpt-image-1", "quality": "medium", "api_key_env": "OPENAI_API_KEY"},
    ),
}


def _yaml(value: Any) -> str:
    if attrs.has(type(value)):  # a nested settings class: written as a mapping
        value = attrs.asdict(value)
    if isinstance(value, Path):
        value = str(value).replace(str(Path.home()), "~", 1)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return json.dumps(value)  # JSON scalars are valid YAML flow scalars
    return json.dumps(value, default=str)


def _help(field: attrs.Attribute[Any]) -> str:
    return str(field.metadata.get("help", "")).strip()


def _default(field: attrs.Attribute[Any]) -> Any:
    if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
        return field.default.factory()  # type: ignore[union-attr]
    return field.default


def _block(cls: type, values: dict[str, Any], indent: str) -> list[str]:
    lines = []
    for field in attrs.fields(cls):
        help_text = _help(field)
        if help_text:
            lines.append(f"{indent}# {help_text}")
        if field.name in values:
            lines.append(f"{indent}{field.name}: {_yaml(values[field.name])}")
        elif field.default is attrs.NOTHING:
            lines.append(f"{indent}# {field.name}: (required)")
        else:
            default = _default(field)
            prefix = "# " if default is None else ""
            lines.append(f"{indent}{prefix}{field.name}: {_yaml(default)}")
    return lines


def _instances(regs: dict[str, Registration], section: str) -> list[str]:
    lines = [f"{section}:"]
    if not regs:
        return [f"{section}: {{}}"]
    for reg in regs.values():
        examples = reg.examples or {reg.name: {}}
        lines.append(f"  # type {reg.name!r}, from {reg.owner}")
        for instance, values in examples.items():
            block = [f"  {instance}:", f"    type: {reg.name}"]
            block += _block(reg.config, dict(values), "    ")
            missing = [k for k in _required_keys(reg.config) if k not in values]
            if missing:
                # Left as a comment, so that the sample stays valid as it is.
                lines.append(f"  # needs values for {', '.join(missing)} before it can be used:")
                block = ["  # " + line[2:] for line in block]
            lines.extend(block)
    return lines


def _uninstalled_examples(registry: Registry) -> list[str]:
    """Commented blocks for known plugins that are not installed: how to use one
    once it is."""
    lines = []
    for type_name, (instance, values) in KNOWN_EXAMPLES.items():
        if type_name in registry.backends:
            continue
        dist = KNOWN_PLUGINS[type_name][0]
        lines.append(f"  # With {dist} installed (pip install {dist}):")
        lines.append(f"  # {instance}:")
        lines.append(f"  #   type: {type_name}")
        lines += [f"  #   {key}: {_yaml(value)}" for key, value in values.items()]
    return lines


def _required_keys(cls: type) -> list[str]:
    return [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]


def sample(registry: Registry) -> str:
    missing = [pair for name, pair in KNOWN_PLUGINS.items() if name not in registry.backends]
    head = [
        f"# imagen.yaml, written by `imagen config init` (imagen {__version__}).",
        "# Read from: --config > $IMAGEN_CONFIG > $XDG_CONFIG_HOME/imagen.yaml",
        "#            > ~/.config/imagen.yaml",
        "# Check it with `imagen config validate`. Secrets never go in this file: a block",
        "# names the environment variable that holds them (e.g. api_token_env).",
        "",
    ]
    default_field = attrs.fields(Config).default_backend
    default = "mock" if "mock" in registry.backends else next(iter(registry.backends), "mock")
    body = [f"# {_help(default_field)}", f"default_backend: {default}", "", "output:"]
    body += _block(OutputConfig, {}, "  ")
    body += ["", "# --style NAME wraps the prompt in a template; {prompt} marks where it goes."]
    body += ["styles:"] + [f"  {name}: {_yaml(text)}" for name, text in SAMPLE_STYLES.items()]
    body += ["", "# Backend instances: name -> block. `type` picks the plugin (default: the name)."]
    if missing:
        body += ["# More backend types come with plugins:"]
        body += [f"#   pip install {dist:<18} # {what}" for dist, what in missing]
    body += _instances(registry.backends, "backends")
    body += _uninstalled_examples(registry)
    body += ["", "# Sinks get every finished image after it is written. `NAME: false` turns off"]
    body += ["# a sink that is on by default."]
    body += _instances(registry.sinks, "sinks")
    body += ["", "# The job queue of `imagen submit` and `imagen worker` (see docs/worker.md)."]
    body += [f"# Installed queue types: {', '.join(sorted(registry.queues)) or 'none'}."]
    body += ["# queue:", "#   type: sqlite"]
    body += [
        "",
        "# `imagen mcp` (agents): calls estimated above this price wait for a confirmation.",
    ]
    body += ["# mcp:", "#   confirm_above_usd: 0.50"]
    return "\n".join(head + body) + "\n"
