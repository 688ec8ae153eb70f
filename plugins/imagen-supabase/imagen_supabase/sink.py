"""The ``supabase`` sink: usage rows, image upload + image rows, and the usage source.

What is sent for one generation (``plan``):

- a usage row into ``mai.imagen_usage``, for every finished generation (failed
  ones too), when the credentials are set and cloud sync is not ``off``;
- the image into Storage and a row into ``imagen.images``, for a successful
  generation when cloud sync is active: mode ``on``, or ``auto`` with the
  credentials and ``owner_user_id`` all set.

Being a sink it is best-effort, and more: nothing raises out of ``send``; every
failure of one generation becomes one line ``imagen: cloud sync: …`` and the
image and its sidecar stay where they are. ``check`` is the one place that
stops a run: ``on`` without what it needs fails before anything is generated.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import attrs

from imagen_core.errors import ConfigError, describe
from imagen_core.notices import warn
from imagen_core.values import value_eq, value_hash, value_repr
from imagen_supabase import credential_variable_set
from imagen_supabase.settings import SupabaseConfig, Table

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterator

    from imagen_core.models import Generation
    from imagen_core.usage import UsageRow
    from imagen_supabase.credentials import Credentials
    from imagen_supabase.transport import Transport

# After Supabase did not answer at all, later generations skip it for this long
# instead of each waiting through the retries again (a batch while offline).
QUIET_AFTER_UNREACHABLE_S = 30.0

OFF_HINT = "or turn cloud sync off (--no-cloud, IMAGEN_CLOUD_SYNC=off or output.cloud_sync: off)"


@attrs.frozen(repr=False, eq=False)
class Plan:
    __repr__ = value_repr
    __eq__ = value_eq
    __hash__ = value_hash

    usage_row: bool
    image: bool


def plan(mode: str, *, credentials_set: bool, owner_set: bool) -> Plan:
    """What cloud sync does in ``mode`` (``check`` has already refused ``on`` when
    something is missing)."""
    if mode == "off" or not credentials_set:
        return Plan(usage_row=False, image=False)
    return Plan(usage_row=True, image=owner_set)


class SupabaseSink:
    def __init__(self, config: SupabaseConfig) -> None:
        self.config = config
        self.images_table = Table.parse(config.images_table)
        self.usage_table = Table.parse(config.usage_table) if config.usage_table else None
        self._transport: Transport | None = None
        self._quiet_until = 0.0

    # ------------------------------------------------------------ before
    def check(self, cloud_sync: str) -> None:
        """``on`` needs the credentials and owner_user_id: say exactly what is missing
        before the backend runs (and maybe costs money)."""
        if cloud_sync != "on":
            return
        from imagen_supabase import credentials

        env = credentials.from_env()
        fixes = []
        if env.credentials is None:
            fixes.append(env.problem())
        if not self.config.owner_user_id:
            fixes.append(
                "owner_user_id is empty: set it to your Supabase user id (auth.users.id) in "
                "the supabase block under sinks: in imagen.yaml"
            )
        if fixes:
            raise ConfigError(f"cloud sync is on, but {'; and '.join(fixes)}; {OFF_HINT}")

    # ------------------------------------------------------------ after
    def send(self, generation: Generation) -> None:
        mode = generation.cloud_sync
        if mode == "off":
            return
        if mode == "auto" and not credential_variable_set():
            return  # not configured: quiet, and without importing the credentials' module
        from imagen_supabase import credentials

        env = credentials.from_env()
        if env.credentials is None:
            # Nothing set is the normal "not configured" case: quiet. Half set is a mistake.
            if env.anything_set or mode == "on":
                warn(f"cloud sync: {env.problem()}; nothing is synced", once="supabase:env")
            return
        key = env.credentials.key
        todo = plan(mode, credentials_set=True, owner_set=bool(self.config.owner_user_id))
        if mode == "on" and not todo.image:
            warn("cloud sync: owner_user_id is empty; no image is uploaded", once="supabase:owner")
        try:
            problems = self._sync(generation, env.credentials, todo)
        except Exception as exc:  # a bug of ours must not cost the person the generation
            problems = [f"unexpected error: {describe(exc)}"]
        if problems:
            # One line per generation, whatever failed: the person sees it, scripts can grep it.
            warn(credentials.redact("cloud sync: " + "; ".join(problems), key))

    def _sync(self, generation: Generation, creds: Credentials, todo: Plan) -> list[str]:
        """Send what ``todo`` says; return the problems, one phrase each."""
        from imagen_supabase.transport import SyncError, Unreachable

        if time.monotonic() < self._quiet_until:
            return [f"skipped: Supabase at {creds.url} did not answer moments ago; nothing synced"]
        transport = self._transport_for(creds)
        problems = []
        lost = "nothing was synced"
        try:
            if todo.usage_row and self.usage_table is not None:
                try:
                    self._send_usage_row(transport, self.usage_table, generation)
                    lost = "the image was not uploaded"
                except Unreachable:
                    raise
                except SyncError as exc:
                    # The image is worth sending even when the usage row is refused.
                    problems.append(f"usage row not recorded: {exc}")
            if todo.image and generation.ok:
                self._send_image(transport, generation)
        except Unreachable as exc:
            self._quiet_until = time.monotonic() + QUIET_AFTER_UNREACHABLE_S
            problems.append(f"{exc}; {lost}")
        except SyncError as exc:
            problems.append(str(exc))
        return problems

    @staticmethod
    def _send_usage_row(transport: Transport, table: Table, generation: Generation) -> None:
        from imagen_core.identity import caller
        from imagen_supabase import postgrest, records

        postgrest.insert(transport, table, records.usage_row(generation, caller()))

    def _send_image(self, transport: Transport, generation: Generation) -> None:
        """Upload the image, then insert its row (never a row without its image)."""
        from imagen_supabase import postgrest, records, storage
        from imagen_supabase.transport import SyncError

        result = generation.result
        if result is None or generation.path is None:
            return
        bucket = self.config.bucket
        wanted = records.storage_name(generation, result)
        name = storage.upload(transport, bucket, wanted, result.image, result.mime_type)
        row = records.image_row(
            generation, owner_user_id=self.config.owner_user_id, bucket=bucket, storage_path=name
        )
        try:
            postgrest.insert(transport, self.images_table, row)
        except SyncError as exc:
            # Same class (an Unreachable stays one), with what is now in the bucket.
            raise type(exc)(f"{exc} (uploaded as {bucket}/{name}, without a row)") from None

    def _transport_for(self, creds: Credentials) -> Transport:
        # Kept for the session (one connection for all requests), renewed if the
        # environment changed in between (library callers, tests).
        if self._transport is None or self._transport.credentials != creds:
            from imagen_supabase.transport import Transport

            self._transport = Transport(
                creds, timeout_s=self.config.timeout_s, retries=self.config.retries
            )
        return self._transport

    # ------------------------------------------------------------ reading back
    def rows(self, *, since: dt.date | None, until: dt.date | None) -> Iterator[UsageRow]:
        """The usage rows of ``mai.imagen_usage`` in [since, until], oldest first
        (``imagen usage --source supabase``)."""
        from imagen_core.usage import bounds
        from imagen_supabase import credentials, postgrest, records
        from imagen_supabase.transport import SyncError

        if self.usage_table is None:
            raise ConfigError(
                "usage_table is empty in the supabase sink block: set it (default "
                "mai.imagen_usage) to read usage rows from Supabase"
            )
        env = credentials.from_env()
        if env.credentials is None:
            raise ConfigError(f"reading usage from Supabase: {env.problem()}")
        creds = env.credentials
        params = [("select", ",".join(records.USAGE_COLUMNS))]
        start, end = bounds(since, until)
        if start is not None:
            params.append(("created_at", f"gte.{start.isoformat()}"))
        if end is not None:
            params.append(("created_at", f"lt.{end.isoformat()}"))
        # id breaks ties between rows of the same second: offsets need a total order.
        params.append(("order", "created_at.asc,id.asc"))
        table = self.usage_table
        try:
            for data in postgrest.select(self._transport_for(creds), table, params):
                try:
                    yield records.usage_from(data)
                except (KeyError, TypeError, ValueError) as exc:
                    raise SyncError(
                        f"reading {table}: a row is not what imagen writes ({describe(exc)}); "
                        "compare the table with `imagen supabase schema`"
                    ) from None
        except SyncError as exc:
            raise SyncError(credentials.redact(str(exc), creds.key)) from None
