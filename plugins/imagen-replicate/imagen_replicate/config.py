"""The keys of a ``replicate`` block in imagen.yaml, and the model reference they name.

Cheap to import (attrs only): ``imagen config validate`` structures blocks with it
without loading requests.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from imagen_core import setting

# Replicate's official models are addressed as owner/name; any other model needs a
# version, which the API only accepts as the full 64-hex id.
_MODEL = re.compile(
    r"(?P<owner>[A-Za-z0-9][\w.-]*)/(?P<name>[\w.-]+)(?::(?P<version>[0-9a-f]{64}))?"
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Replicate API tokens start with r8_; pasting one where the *name* of a variable
# belongs would otherwise end up in an error message ("set r8_... in the environment").
_TOKEN_PREFIXES = ("r8_",)

WAIT_MIN_S, WAIT_MAX_S = 1, 60  # the range Replicate accepts for Prefer: wait=N


@attrs.frozen
class ModelRef:
    """``owner/name`` (an official model) or ``owner/name:version``."""

    owner: str
    name: str
    version: str | None = None

    @property
    def slug(self) -> str:
        """``owner/name``, without the version: the key of the family and price tables."""
        return f"{self.owner}/{self.name}"

    def __str__(self) -> str:
        return f"{self.slug}:{self.version}" if self.version else self.slug


def parse_model(text: str) -> ModelRef:
    match = _MODEL.fullmatch(text)
    if match is None:
        raise ValueError(
            "model must be owner/name (an official model, e.g. black-forest-labs/flux-schnell) "
            f"or owner/name:VERSION with the 64-hex version id, got {text!r}"
        )
    return ModelRef(match["owner"], match["name"], match["version"])


def _model(_instance: object, _attribute: attrs.Attribute[str], value: str) -> None:
    parse_model(value)


def _env_name(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    # Never echo the value: it may be the token itself, pasted in by mistake.
    if value.startswith(_TOKEN_PREFIXES):
        raise ValueError(
            f"{attribute.name} looks like an API token: it must name the environment "
            "variable that holds the token (e.g. REPLICATE_API_TOKEN), never the token"
        )
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be an environment variable name such as "
            "REPLICATE_API_TOKEN (letters, digits and _)"
        )


def _wait(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not WAIT_MIN_S <= value <= WAIT_MAX_S:
        raise ValueError(
            f"{attribute.name} must be between {WAIT_MIN_S} and {WAIT_MAX_S} "
            f"(Replicate's sync-mode range), got {value}"
        )


def _positive(_instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be more than 0, got {value}")


def _base_url(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not re.fullmatch(r"https?://[^/\s?#]+(/[^\s?#]*)?", value):
        raise ValueError(
            f"{attribute.name} must be an http(s) URL such as https://api.replicate.com, "
            f"got {value!r}"
        )


def _no_trailing_slash(value: str) -> str:
    return value.rstrip("/")


def _family(_instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
    if value is None:
        return
    from imagen_replicate.families import catalog

    known = catalog()
    if value not in known:
        raise ValueError(
            f"{attribute.name} {value!r} is not a known model family; known: {', '.join(known)}"
        )


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return dict(value)


@attrs.frozen
class ReplicateConfig:
    """A ``replicate`` block. The token itself never appears here, only the name of
    the environment variable that holds it."""

    model: str = setting(
        "black-forest-labs/flux-schnell",
        validator=_model,
        help="owner/name of an official model, or owner/name:VERSION (64 hex digits)",
    )
    api_token_env: str = setting(
        "REPLICATE_API_TOKEN",
        validator=_env_name,
        help="environment variable holding the Replicate API token (never the token itself)",
    )
    input: dict[str, Any] = setting(
        attrs.Factory(dict),
        converter=_copy,
        help="extra model inputs sent as given, e.g. {output_format: png, go_fast: false}",
    )
    timeout_s: float = setting(
        300.0, validator=_positive, help="cancel the prediction after this many seconds"
    )
    wait_s: int = setting(
        60, validator=_wait, help="sync mode: how long Replicate holds the create call (1-60 s)"
    )
    family: str | None = setting(
        None,
        validator=_family,
        help="input mapping to use (flux-schnell, sd35, ...); default: looked up from the model",
    )
    base_url: str = setting(
        "https://api.replicate.com",
        converter=_no_trailing_slash,
        validator=_base_url,
        help="API root (a proxy, or a fake server in tests)",
    )

    @property
    def model_ref(self) -> ModelRef:
        return parse_model(self.model)
