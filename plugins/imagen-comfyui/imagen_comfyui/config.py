"""The keys of a ``comfyui`` block in imagen.yaml (besides ``type`` and ``device``).

imagen structures the block into ``ComfyUIConfig`` with cattrs, so an unknown or
mistyped key (also inside ``defaults``) is reported with its file:line. The
validators only look at the values themselves: a workflow file is read when the
backend is built, so a missing file never blocks the other backends.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from imagen_comfyui.bundled import spec_problem
from imagen_comfyui.placeholders import BUILTIN_TYPES, FROM_REQUEST, is_input
from imagen_core.config import setting
from imagen_core.validators import not_negative, positive

DEFAULT_URL = "http://127.0.0.1:8188"
_VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _http_url(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"{attribute.name} must be an http:// or https:// URL such as {DEFAULT_URL}, "
            f"got {value!r}"
        )


def _workflow(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    problem = spec_problem(value)
    if problem:
        raise ValueError(problem)


def _gpu_rate(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not (0 <= value < float("inf")):
        raise ValueError(f"{attribute.name} must be 0 or more USD, got {value}")


def _fraction(_instance: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not 0 <= value <= 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value}")


def _plain_value(value: Any) -> bool:
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, list):
        return all(_plain_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_value(v) for k, v in value.items())
    return False


def _vars(_instance: object, _attribute: attrs.Attribute[Any], value: dict[str, Any]) -> None:
    for name, item in value.items():
        if not _VAR_NAME.fullmatch(name):
            raise ValueError(
                f"vars.{name}: a placeholder name is letters, digits and _ (as in ${{my_lora}})"
            )
        if is_input(name):
            raise ValueError(
                f"vars.{name}: ${{{name}}} is filled with an uploaded input image (--image, --mask)"
            )
        if name in FROM_REQUEST:
            raise ValueError(
                f"vars.{name}: ${{{name}}} comes from the request (the prompt, --seed, --size)"
            )
        if name in BUILTIN_TYPES:
            raise ValueError(
                f"vars.{name}: ${{{name}}} is a built-in placeholder; set defaults.{name} instead"
            )
        if not _plain_value(item):
            raise ValueError(
                f"vars.{name}: expected a string, number, true/false, or a list or mapping of them"
            )


@attrs.frozen
class Defaults:
    """Overrides of the workflow's own defaults (from its data file)."""

    steps: int | None = setting(None, validator=positive, help="sampling steps")
    cfg: float | None = setting(None, validator=not_negative, help="classifier-free guidance")
    denoise: float | None = setting(None, validator=_fraction, help="denoise strength, 0 to 1")
    sampler: str | None = setting(None, help="sampler name, e.g. euler")
    scheduler: str | None = setting(None, help="scheduler name, e.g. simple or sgm_uniform")
    negative: str | None = setting(None, help="negative prompt used when none is given")
    batch_size: int | None = setting(None, validator=positive, help="images per prompt")
    size_multiple: int | None = setting(
        None, validator=positive, help="width and height are rounded to multiples of this"
    )

    def values(self) -> dict[str, Any]:
        """The placeholder values this sets (size_multiple is a rule, not a value)."""
        return {
            name: value
            for name, value in attrs.asdict(self).items()
            if value is not None and name != "size_multiple"
        }


@attrs.frozen
class ComfyUIConfig:
    """One ``comfyui`` instance: which server, which workflow, and its values."""

    url: str = setting(DEFAULT_URL, validator=_http_url, help="where the ComfyUI server listens")
    workflow: str = setting(
        "flux1-schnell",
        validator=_workflow,
        help="a bundled workflow (see `imagen comfyui workflows`) or an API-format .json path",
    )
    vars: dict[str, Any] = setting(
        attrs.Factory(dict),
        validator=_vars,
        help="values for the workflow's own ${name} placeholders (they keep their YAML type)",
    )
    defaults: Defaults = setting(
        attrs.Factory(Defaults),
        help="override the workflow's defaults (steps, cfg, denoise, sampler, scheduler, "
        "negative, batch_size, size_multiple)",
    )
    timeout_s: float = setting(
        600.0, validator=positive, help="give up after this many seconds (the prompt is cancelled)"
    )
    gpu_usd_per_hour: float | None = setting(
        None,
        validator=_gpu_rate,
        help="what an hour of this server's GPU costs you: each image then costs its "
        "execution time (ComfyUI's own, not queue wait) times this",
    )
    output_node: str | None = setting(
        None, help="id of the node whose images to take when the workflow saves several"
    )

    def problems(self) -> list[str]:
        """What ``imagen config validate`` finds beyond the values: the workflow
        file exists, parses, and has an output node ComfyUI keeps (read here,
        not at every command, so a missing file never blocks other backends)."""
        from imagen_comfyui import workflows
        from imagen_comfyui.errors import WorkflowError

        if spec_problem(self.workflow):
            return []  # already reported by the validator
        try:
            workflows.load(self.workflow, output_node=self.output_node)
        except WorkflowError as exc:
            return [str(exc)]
        return []
