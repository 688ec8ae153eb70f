"""The keys of an ``openai`` block in imagen.yaml.

Cheap to import (attrs only, and the model table only to check a value against
a known model): ``imagen config validate`` structures blocks with it without
loading requests.
"""

from __future__ import annotations

from typing import Any

import attrs

from imagen_core import setting
from imagen_core.validators import env_name, http_url, no_trailing_slash, not_negative, positive

OPENAI_BASE_URL = "https://api.openai.com/v1"
# OpenAI keys start with sk- (sk-proj-, sk-svcacct-, sk-admin-): pasting one where
# the *name* of a variable belongs would otherwise reach an error message.
_KEY_PREFIXES = ("sk-",)
# What a request carries that no OpenAI model takes; request_fields names the body
# field a compatible server reads each from.
REQUEST_FIELDS = ("seed", "steps", "negative", "cfg", "strength")
BACKGROUNDS = ("transparent", "opaque", "auto")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MODERATIONS = ("low", "auto")


def _model(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip() or any(c.isspace() for c in value):
        raise ValueError(
            f"{attribute.name} must be a model name such as gpt-image-1 or dall-e-3 (or the "
            f"name a compatible server gives its model), got {value!r}"
        )


def _count(_instance: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and not 0 <= value <= 16:
        raise ValueError(f"{attribute.name} must be from 0 to 16, got {value}")


def _one_of(choices: tuple[str, ...]) -> Any:
    def check(_instance: object, attribute: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and value not in choices:
            raise ValueError(f"{attribute.name} must be one of {', '.join(choices)}, got {value!r}")

    return check


def _quality(
    instance: OpenAIConfig, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    from imagen_openai.catalog import catalog

    family = catalog().family_for(instance.model)
    if family.known and value not in family.qualities:
        raise ValueError(
            f"{attribute.name} {value!r} is not a quality {instance.model} takes; it takes "
            f"{', '.join(family.qualities)}"
        )


def _gpt_only(
    instance: OpenAIConfig, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    from imagen_openai.catalog import catalog

    family = catalog().family_for(instance.model)
    if family.known and not family.gpt_options:
        raise ValueError(
            f"{attribute.name} is for the GPT image models; {instance.model} does not take it "
            "(remove it from the block)"
        )


def _request_fields(
    _instance: object, attribute: attrs.Attribute[dict[str, str]], value: dict[str, str]
) -> None:
    for key, field in value.items():
        if key not in REQUEST_FIELDS:
            raise ValueError(
                f"{attribute.name} maps what a request carries to a body field; {key!r} is not "
                f"one of {', '.join(REQUEST_FIELDS)}"
            )
        if not isinstance(field, str) or not field.strip():
            raise ValueError(f"{attribute.name}.{key} must name a body field, got {field!r}")


@attrs.frozen
class OpenAIConfig:
    """An ``openai`` block. The key itself never appears here, only the name of the
    environment variable that holds it."""

    model: str = setting(
        "gpt-image-1",
        validator=_model,
        help="gpt-image-1, gpt-image-1.5, dall-e-3, dall-e-2, ... or a compatible server's model",
    )
    base_url: str = setting(
        OPENAI_BASE_URL,
        converter=no_trailing_slash,
        validator=http_url(
            what="an http(s) URL of the API root, with its /v1,",
            such_as=f"{OPENAI_BASE_URL} or http://localhost:8080/v1",
        ),
        help="API root with its /v1: OpenAI's, or LocalAI, LiteLLM, another imagen serve, ...",
    )
    api_key_env: str | None = setting(
        "OPENAI_API_KEY",
        validator=env_name(secret_prefixes=_KEY_PREFIXES, null="for a server that needs no key"),
        help="environment variable holding the API key (never the key); null: send no key",
    )
    quality: str | None = setting(
        None,
        validator=_quality,
        help="low, medium, high, auto (GPT image models); standard, hd (dall-e-3); unset: default",
    )
    background: str | None = setting(
        None,
        validator=[_one_of(BACKGROUNDS), _gpt_only],
        help="transparent, opaque or auto (GPT image models; transparent needs png or webp)",
    )
    output_format: str | None = setting(
        None,
        validator=[_one_of(OUTPUT_FORMATS), _gpt_only],
        help="png, jpeg or webp (GPT image models; default png)",
    )
    moderation: str | None = setting(
        None,
        validator=[_one_of(MODERATIONS), _gpt_only],
        help="low or auto: how strict OpenAI's filter is (GPT image models, generations only)",
    )
    extra_body: dict[str, Any] = setting(
        attrs.Factory(dict),
        converter=dict,
        help="fields added to every request body as given (null removes one), e.g. {style: vivid}",
    )
    request_fields: dict[str, str] = setting(
        attrs.Factory(dict),
        converter=dict,
        validator=_request_fields,
        help="send the request's seed/steps/negative/cfg/strength as these fields (other servers)",
    )
    input_images: int | None = setting(
        None,
        validator=_count,
        help="how many input images /images/edits takes (0: none); default: the model's",
    )
    usd_per_image: float | None = setting(
        None,
        validator=not_negative,
        help="price of one image, for a model the price table lacks (a paid compatible server)",
    )
    timeout_s: float = setting(
        300.0, validator=positive, help="give up on an answer after this many seconds in all"
    )

    @property
    def is_openai(self) -> bool:
        """Whether base_url is OpenAI's own API (which decides names and links in messages)."""
        return self.base_url.lower().startswith(("https://api.openai.com", "http://api.openai.com"))
