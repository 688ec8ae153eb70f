"""The keys of a ``replicate`` block in imagen.yaml, and the model reference they name.

Cheap to import (attrs only): ``imagen config validate`` structures blocks with it
without loading requests.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from imagen_core import setting
from imagen_core.validators import env_name, http_url, listed, no_trailing_slash, positive

# Replicate's official models are addressed as owner/name; any other model needs a
# version, which the API only accepts as the full 64-hex id.
_MODEL = re.compile(
    r"(?P<owner>[A-Za-z0-9][\w.-]*)/(?P<name>[\w.-]+)(?::(?P<version>[0-9a-f]{64}))?"
)
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


def _wait(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not WAIT_MIN_S <= value <= WAIT_MAX_S:
        raise ValueError(
            f"{attribute.name} must be between {WAIT_MIN_S} and {WAIT_MAX_S} "
            f"(Replicate's sync-mode range), got {value}"
        )


def _families() -> list[str]:
    from imagen_replicate.families import catalog

    return list(catalog())


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
        validator=env_name(secret="API token", secret_prefixes=_TOKEN_PREFIXES),
        help="environment variable holding the Replicate API token (never the token itself)",
    )
    input: dict[str, Any] = setting(
        attrs.Factory(dict),
        converter=dict,
        help="extra model inputs sent as given, e.g. {output_format: png, go_fast: false}",
    )
    timeout_s: float = setting(
        300.0, validator=positive, help="cancel the prediction after this many seconds"
    )
    wait_s: int = setting(
        60, validator=_wait, help="sync mode: how long Replicate holds the create call (1-60 s)"
    )
    family: str | None = setting(
        None,
        validator=listed(_families, "model family"),
        help="input mapping to use (flux-schnell, sd35, ...); default: looked up from the model",
    )
    base_url: str = setting(
        "https://api.replicate.com",
        converter=no_trailing_slash,
        validator=http_url(),
        help="API root (a proxy, or a fake server in tests)",
    )

    @property
    def model_ref(self) -> ModelRef:
        return parse_model(self.model)
