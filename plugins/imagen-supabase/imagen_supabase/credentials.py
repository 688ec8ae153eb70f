"""Supabase credentials: from the environment only, never from imagen.yaml.

The key is a secret. It lives in ``Credentials.key`` (left out of the repr), goes
into the ``apikey``/``Authorization`` headers and nowhere else, and ``redact``
scrubs it from any text that is about to be shown, as a second line of defence.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

import attrs

from imagen_supabase import KEY_VARS, URL_VAR

KEY_HINT = "SUPABASE_SERVICE_KEY (or MAI_SUPABASE_KEY)"

# A legacy key (service_role) is a JWT: three base64url parts, the first "eyJ".
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@attrs.frozen
class Credentials:
    url: str  # the project URL without a trailing slash: https://<ref>.supabase.co
    key: str = attrs.field(repr=False)
    key_var: str  # which variable held the key, for messages

    def headers(self) -> dict[str, str]:
        """Auth headers for every Storage and PostgREST request.

        ``apikey`` always. ``Authorization: Bearer`` only for a legacy JWT key: the
        new ``sb_secret_…`` keys are not JWTs and are refused as a bearer token,
        while the API gateway derives the role from ``apikey`` alone."""
        headers = {"apikey": self.key}
        if _JWT.fullmatch(self.key):
            headers["Authorization"] = f"Bearer {self.key}"
        return headers


@attrs.frozen
class Environment:
    """What the environment holds: the credentials, or what is missing or wrong."""

    credentials: Credentials | None
    missing: tuple[str, ...] = ()  # variables to set: "SUPABASE_URL", KEY_HINT
    bad_url: bool = False

    @property
    def anything_set(self) -> bool:
        """Whether the person started to configure Supabase (some variable is set)."""
        return self.credentials is not None or len(self.missing) < 2 or self.bad_url

    def problem(self) -> str:
        """One line: what is wrong and how to fix it (never a variable's value)."""
        fixes = []
        if self.bad_url:
            fixes.append(
                f"{URL_VAR} is not an http(s) URL: set it to https://<project-ref>.supabase.co"
            )
        if self.missing:
            names = " and ".join(self.missing)
            verb = "are" if len(self.missing) > 1 else "is"
            what = " and ".join(_WHAT[name] for name in self.missing)
            fixes.append(f"{names} {verb} not set in the environment ({what})")
        return "; ".join(fixes)


_WHAT = {
    URL_VAR: "the project URL, https://<project-ref>.supabase.co",
    KEY_HINT: "the project's service_role or secret key",
}


def from_env() -> Environment:
    raw_url = os.environ.get(URL_VAR, "").strip()
    key_var = next((v for v in KEY_VARS if os.environ.get(v, "").strip()), None)
    missing = []
    if not raw_url:
        missing.append(URL_VAR)
    if key_var is None:
        missing.append(KEY_HINT)
    url = _project_url(raw_url) if raw_url else None
    bad_url = bool(raw_url) and url is None
    if missing or url is None or key_var is None:
        return Environment(None, tuple(missing), bad_url)
    return Environment(Credentials(url, os.environ[key_var].strip(), key_var))


def _project_url(text: str) -> str | None:
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return text.rstrip("/")


def redact(text: str, key: str | None) -> str:
    """``text`` with the key replaced, should a server or a library ever echo it."""
    if key and len(key) >= 8:  # a short "key" would redact ordinary words
        text = text.replace(key, "[redacted]")
    return text
