"""The ``supabase`` sink block of imagen.yaml. Credentials are never part of it:
they come from the environment only (see ``credentials``)."""

from __future__ import annotations

import re
import uuid

import attrs

from imagen_core.config import setting
from imagen_core.validators import positive
from imagen_core.values import value_eq, value_hash, value_repr

# PostgREST addresses a table by name in the URL and its schema in a header, so
# both halves must be plain identifiers (no quoting games in a config file).
_TABLE = re.compile(r"(?:([A-Za-z_][A-Za-z0-9_]*)\.)?([A-Za-z_][A-Za-z0-9_]*)")
# A bucket name is one path segment of the Storage URL (the server's own rule is
# laxer about punctuation; a slash would silently name another bucket).
_BUCKET = re.compile(r"[^/\x00-\x1f\x7f]{1,100}")


@attrs.frozen(repr=False, eq=False)
class Table:
    """A table as PostgREST reaches it: ``/rest/v1/{name}`` plus the schema header."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> Table:
        match = _TABLE.fullmatch(text)
        if match is None:
            raise ValueError(f"expected a table as schema.name, got {text!r}")
        return cls(match.group(1) or "public", match.group(2))

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


def _owner(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value:
        try:
            uuid.UUID(value)
        except ValueError:
            raise ValueError(
                f"{attribute.name} must be your Supabase user id (a uuid from auth.users, "
                f"like 1b4e28ba-2fa1-11d2-883f-0016d3cca427), got {value!r}"
            ) from None


def _table(optional: bool) -> object:
    def check(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
        if optional and not value:
            return
        try:
            Table.parse(value)
        except ValueError as exc:
            raise ValueError(f"{attribute.name}: {exc}") from None

    return check


def _bucket(_instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not _BUCKET.fullmatch(value):
        raise ValueError(
            f"{attribute.name} must be a Storage bucket name (1 to 100 characters, no '/'), "
            f"got {value!r}"
        )


def _retries(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 10:
        raise ValueError(f"{attribute.name} must be between 0 and 10, got {value}")


@attrs.frozen(repr=False, eq=False)
class SupabaseConfig:
    """Keys of the ``supabase`` sink block. Every key has a default: the sink is on by
    default and does nothing until SUPABASE_URL and a key are in the environment."""

    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    owner_user_id: str = setting(
        "",
        validator=_owner,
        help="your Supabase user id (auth.users.id); empty: usage rows only, no image uploads. "
        "Credentials: SUPABASE_URL and SUPABASE_SERVICE_KEY in the environment",
    )
    bucket: str = setting(
        "imagen-generated", validator=_bucket, help="private Storage bucket the images go to"
    )
    images_table: str = setting(
        "imagen.images", validator=_table(False), help="schema.table of the image rows"
    )
    usage_table: str = setting(
        "mai.imagen_usage",
        validator=_table(True),
        help="schema.table of the usage rows (imagen usage --source); empty: no usage rows",
    )
    timeout_s: float = setting(
        30.0,
        validator=positive,
        help="seconds to wait for an answer to each request (to connect: at most 5)",
    )
    retries: int = setting(
        3, validator=_retries, help="retries on 429, 5xx or a lost connection, with backoff"
    )
