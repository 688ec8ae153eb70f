"""attrs validators and converters for the keys of a plugin's config block.

Each raises ValueError with one line naming the key and what it takes; the core
adds ``file:line:column`` (see ``imagen_core.config``). Cheap to import (``re``
only, beside attrs), so a plugin's config module stays cheap too:

    from imagen_core import setting
    from imagen_core.validators import env_name, http_url, no_trailing_slash, positive

    @attrs.frozen
    class FooConfig:
        api_key_env: str = setting("FOO_KEY", validator=env_name(secret_prefixes=("foo_",)),
                                   help="environment variable holding the key")
        base_url: str = setting("https://api.foo.example", converter=no_trailing_slash,
                                validator=http_url(), help="API root")
        timeout_s: float = setting(300.0, validator=positive, help="give up after this long")
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

#: The signature attrs calls a validator with: (instance, attribute, value).
Validator = Callable[[Any, Any, Any], None]

# Patterns, not compiled at import: re compiles (and caches) them on first use,
# which a command without such a key in its config never reaches.
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_HTTP_URL = r"https?://[^/\s?#]+(/[^\s?#]*)?"
# No variable name is this long; secrets (API keys, tokens) are longer.
_ENV_NAME_MAX = 60


def positive(_instance: object, attribute: Any, value: Any) -> None:
    """More than 0 (None, for an optional key, passes)."""
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be more than 0, got {value}")


def not_negative(_instance: object, attribute: Any, value: Any) -> None:
    """0 or more (None, for an optional key, passes)."""
    if value is not None and not value >= 0:
        raise ValueError(f"{attribute.name} must be 0 or more, got {value}")


def no_trailing_slash(value: str) -> str:
    """A converter for URL roots: ``https://host/v1/`` -> ``https://host/v1``."""
    return value.rstrip("/")


def http_url(*, what: str = "an http(s) URL", such_as: str | None = None) -> Validator:
    """An http(s) URL. The message says the key must be ``what`` such as
    ``such_as``, else the key's default."""

    def check(_instance: object, attribute: Any, value: str) -> None:
        if not re.fullmatch(_HTTP_URL, value):
            example = such_as or attribute.default
            raise ValueError(f"{attribute.name} must be {what} such as {example}, got {value!r}")

    return check


def env_name(
    *,
    secret: str = "API key",
    secret_prefixes: tuple[str, ...] = (),
    secret_signs: tuple[str, ...] = (),
    null: str | None = None,
    example: str | None = None,
) -> Validator:
    """The name of an environment variable that holds a secret, never the secret:
    a value that looks like one (it starts with one of ``secret_prefixes``, holds
    one of ``secret_signs`` or is too long for a name) is refused without being
    echoed, as the message goes to the terminal. The example in the messages is
    ``example``, else the key's default. ``null``: what None means, for a key that may be null
    (None passes then); else None is refused like any other non-name."""

    def check(_instance: object, attribute: Any, value: str | None) -> None:
        if value is None and null is not None:
            return
        named = example or attribute.default
        if isinstance(value, str) and (
            value.startswith(secret_prefixes)
            or any(sign in value for sign in secret_signs)
            or len(value) > _ENV_NAME_MAX
        ):
            what = secret.removeprefix("API ")
            raise ValueError(
                f"{attribute.name} looks like an {secret}: it must name the environment "
                f"variable that holds the {what} (e.g. {named}), never the {what}"
            )
        if not isinstance(value, str) or not re.fullmatch(_ENV_NAME, value):
            raise ValueError(
                f"{attribute.name} must be an environment variable name such as {named} "
                f"(letters, digits and _){f', or null {null}' if null else ''}"
            )

    return check


def listed(names: Callable[[], Iterable[str]], what: str) -> Validator:
    """One of ``names()``, called only when the key is set (a plugin's table is
    loaded when a block uses it, not on import); None passes."""

    def check(_instance: object, attribute: Any, value: str | None) -> None:
        if value is None:
            return
        known = list(names())
        if value not in known:
            raise ValueError(
                f"{attribute.name} {value!r} is not a known {what}; known: {', '.join(known)}"
            )

    return check
