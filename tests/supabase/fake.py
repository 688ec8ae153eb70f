"""A fake Supabase on 127.0.0.1: the API gateway's key check, PostgREST's
insert/select and Storage's upload, with the real headers, status codes and error
bodies (../shared/reference/backend-apis.md §2–§3). It records every request and
can be scripted to fail.

It is deliberately no easier than the real thing: a schema not exposed answers
406 PGRST106, an insert answers 201 with an empty body unless asked otherwise, a
duplicate upload answers HTTP 400 with ``"statusCode": "409"`` in the body, a
page of rows is silently cut at ``max_rows``, an unencoded ``+`` in a timestamp
filter arrives as a space, and an ``sb_secret_`` key sent as a bearer token is
refused.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

# A legacy service_role key is a JWT; the new secret keys are not.
SERVICE_KEY = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJyb2xlIjoic2VydmljZV9yb2xlIiwiaXNzIjoiZmFrZSJ9"
    ".c2lnbmF0dXJlLW9mLXRoZS1mYWtlLWtleQ"
)
SECRET_KEY = "sb_secret_FAKEfake0123456789abcdefFAKE"


@dataclass(frozen=True)
class TableSpec:
    columns: tuple[str, ...]
    not_null: frozenset[str]  # NOT NULL columns without a default
    unique: tuple[tuple[str, ...], ...]  # the primary key first
    defaults: dict[str, Any] = field(default_factory=dict)


# The tables of imagen_supabase/supabase.sql; test_schema.py checks these against PostgreSQL.
TABLES: dict[tuple[str, str], TableSpec] = {
    ("imagen", "images"): TableSpec(
        columns=(
            "id",
            "created_at",
            "owner_user_id",
            "prompt",
            "prompt_sha256",
            "backend",
            "backend_type",
            "model",
            "seed",
            "steps",
            "width",
            "height",
            "latency_s",
            "cost_usd",
            "mime_type",
            "bucket",
            "storage_path",
            "sidecar",
            "tags",
        ),
        not_null=frozenset(
            {
                "owner_user_id",
                "prompt",
                "prompt_sha256",
                "backend",
                "backend_type",
                "model",
                "seed",
                "width",
                "height",
                "mime_type",
                "bucket",
                "storage_path",
                "sidecar",
            }
        ),
        unique=(("id",), ("bucket", "storage_path")),
        defaults={"tags": []},
    ),
    ("mai", "imagen_usage"): TableSpec(
        columns=(
            "id",
            "created_at",
            "backend",
            "backend_type",
            "model",
            "latency_s",
            "cost_usd",
            "prompt_sha256",
            "caller",
            "status",
            "error",
            "cost_basis",
        ),
        not_null=frozenset(
            {"created_at", "backend", "backend_type", "prompt_sha256", "caller", "status"}
        ),
        unique=(("id",),),
    ),
}

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@dataclass
class Recorded:
    method: str
    path: str  # without the query, percent-decoded
    raw_query: str
    query: list[tuple[str, str]]  # decoded as a server decodes it ('+' is a space)
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]


@dataclass
class Scripted:
    prefix: str  # matched against "METHOD /path"
    status: int
    body: Any
    headers: dict[str, str]
    times: int
    action: str  # respond | drop (close, nothing done) | drop_after (done, then close) | slow
    delay: float = 0.0  # for "slow": wait this long, then answer as usual


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def _json_reply(status: int, body: Any, **headers: str) -> Reply:
    return Reply(status, json.dumps(body).encode(), {"Content-Type": "application/json", **headers})


def _pgrst(
    status: int, code: str, message: str, details: str | None = None, hint: str | None = None
) -> Reply:
    return _json_reply(status, {"code": code, "details": details, "hint": hint, "message": message})


def _storage_error(http: int, status_code: str, code: str, error: str, message: str) -> Reply:
    return _json_reply(
        http, {"statusCode": status_code, "code": code, "error": error, "message": message}
    )


class FakeSupabase:
    def __init__(
        self,
        *,
        keys: tuple[str, ...] = (SERVICE_KEY, SECRET_KEY),
        exposed: tuple[str, ...] = ("public", "graphql_public", "imagen", "mai"),
        buckets: dict[str, list[str] | None] | None = None,
        max_rows: int = 1000,
    ) -> None:
        self.keys = keys
        self.exposed = exposed
        # bucket -> allowed mime types (None: any)
        self.buckets = (
            {"imagen-generated": ["image/png", "image/jpeg", "image/webp"]}
            if buckets is None
            else buckets
        )
        self.max_rows = max_rows
        self.requests: list[Recorded] = []
        self.rows: dict[tuple[str, str], list[dict[str, Any]]] = {name: [] for name in TABLES}
        self.objects: dict[tuple[str, str], tuple[bytes, str, str]] = {}
        self.connections = 0
        self._script: list[Scripted] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ------------------------------------------------------------ scripting
    def script(
        self,
        prefix: str,
        status: int = 503,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        action: str = "respond",
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` requests whose "METHOD /path" starts with ``prefix`` get
        this answer instead; or, with ``action``, a dropped connection ("drop": before
        doing anything, "drop_after": after doing it) or a late answer ("slow")."""
        self._script.append(Scripted(prefix, status, body, headers or {}, times, action, delay))

    def requests_to(self, prefix: str) -> list[Recorded]:
        return [r for r in self.requests if f"{r.method} {r.path}".startswith(prefix)]

    def _scripted(self, line: str) -> Scripted | None:
        with self._lock:
            for item in self._script:
                if item.times > 0 and line.startswith(item.prefix):
                    item.times -= 1
                    return item
        return None

    # ------------------------------------------------------------ serving
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with fake._lock:
                    fake.connections += 1

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                recorded = Recorded(
                    method=self.command,
                    path=unquote(parts.path),
                    raw_query=parts.query,
                    query=parse_qsl(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with fake._lock:
                    fake.requests.append(recorded)
                scripted = fake._scripted(f"{recorded.method} {recorded.path}")
                if scripted is not None and scripted.action == "drop":
                    self.close_connection = True
                    return
                if scripted is not None and scripted.action == "slow":
                    time.sleep(scripted.delay)
                if scripted is not None and scripted.action == "respond":
                    reply = (
                        Reply(scripted.status, b"", dict(scripted.headers))
                        if scripted.body is None
                        else _json_reply(scripted.status, scripted.body, **scripted.headers)
                    )
                else:
                    reply = fake.answer(recorded)
                if scripted is not None and scripted.action == "drop_after":
                    self.close_connection = True
                    return
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client gave up waiting ("slow")

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

        return Handler

    def answer(self, request: Recorded) -> Reply:
        denied = self._gateway(request)
        if denied is not None:
            return denied
        if request.path.startswith("/rest/v1/"):
            return self._rest(request)
        if request.path.startswith("/storage/v1/object/") and request.method == "POST":
            return self._upload(request)
        return _json_reply(404, {"message": "no Route matched with those values"})

    def _gateway(self, request: Recorded) -> Reply | None:
        """The API gateway: a registered key in ``apikey``; a bearer token must be a JWT."""
        key = request.headers.get("apikey")
        if not key:
            return _json_reply(
                401,
                {
                    "message": "No API key found in request",
                    "hint": "No `apikey` request header or url param was found.",
                },
            )
        if key not in self.keys:
            return _json_reply(
                401,
                {
                    "message": "Invalid API key",
                    "hint": "Double check your Supabase `anon` or `service_role` API key.",
                },
            )
        auth = request.headers.get("authorization")
        if auth is not None:
            token = auth.removeprefix("Bearer ")
            if not _JWT.fullmatch(token) or token not in self.keys:
                if request.path.startswith("/storage/"):
                    return _storage_error(
                        400, "403", "InvalidJWT", "Unauthorized", "Invalid Compact JWS"
                    )
                return _pgrst(401, "PGRST301", "Expected 3 parts in JWT; got 1")
        return None

    # ------------------------------------------------------------ PostgREST
    def _table(self, request: Recorded, header: str) -> tuple[tuple[str, str], TableSpec] | Reply:
        schema = request.headers.get(header, "public")
        if schema not in self.exposed:
            return _pgrst(
                406,
                "PGRST106",
                f"The schema must be one of the following: {', '.join(self.exposed)}",
            )
        name = request.path.removeprefix("/rest/v1/")
        spec = TABLES.get((schema, name))
        if spec is None:
            return _pgrst(
                404,
                "PGRST205",
                f"Could not find the table '{schema}.{name}' in the schema cache",
            )
        return (schema, name), spec

    def _rest(self, request: Recorded) -> Reply:
        if request.method == "POST":
            return self._insert(request)
        if request.method == "GET":
            return self._select(request)
        return _pgrst(405, "PGRST117", f"Unsupported HTTP method: {request.method}")

    def _insert(self, request: Recorded) -> Reply:
        found = self._table(request, "content-profile")
        if isinstance(found, Reply):
            return found
        key, spec = found
        if not request.headers.get("content-type", "").startswith("application/json"):
            return _pgrst(415, "PGRST107", "The request's Content-Type is not acceptable")
        try:
            payload = json.loads(request.body)
        except ValueError:
            return _pgrst(400, "PGRST102", "Empty or invalid json")
        rows = payload if isinstance(payload, list) else [payload]
        if not rows or not all(isinstance(r, dict) for r in rows):
            return _pgrst(400, "PGRST102", "Empty or invalid json")
        prefer = {p.strip() for p in request.headers.get("prefer", "").split(",") if p.strip()}
        on_conflict = request.param("on_conflict")
        ignore = "resolution=ignore-duplicates" in prefer
        target = tuple(on_conflict[0].split(",")) if on_conflict else spec.unique[0]
        if ignore and target not in spec.unique:
            return _pgrst(
                400,
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            )
        inserted = []
        with self._lock:
            table = self.rows[key]
            for row in rows:
                for column in row:
                    if column not in spec.columns:
                        return _pgrst(
                            400,
                            "PGRST204",
                            f"Could not find the '{column}' column of '{key[1]}' in the schema cache",
                        )
                full = {c: row.get(c, spec.defaults.get(c)) for c in spec.columns}
                if full["id"] is None:
                    full["id"] = str(uuid.uuid4())
                if full.get("created_at") is None and "created_at" not in spec.not_null:
                    full["created_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
                for column in sorted(spec.not_null):
                    if full.get(column) is None:
                        return _pgrst(
                            400,
                            "23502",
                            f'null value in column "{column}" of relation "{key[1]}" violates '
                            "not-null constraint",
                            details="Failing row contains (...).",
                        )
                clash = self._clash(table + inserted, spec, full)
                if clash is not None:
                    if ignore and clash == target:
                        continue
                    name = (
                        f"{key[1]}_pkey"
                        if clash == spec.unique[0]
                        else f"{key[1]}_{'_'.join(clash)}_key"
                    )
                    values = ", ".join(str(full[c]) for c in clash)
                    return _pgrst(
                        409,
                        "23505",
                        f'duplicate key value violates unique constraint "{name}"',
                        details=f"Key ({', '.join(clash)})=({values}) already exists.",
                    )
                inserted.append(full)
            table.extend(inserted)
        applied = [p for p in sorted(prefer) if p.startswith(("return=", "resolution="))]
        headers = {"Content-Range": "*/*"}
        if applied:
            headers["Preference-Applied"] = ", ".join(applied)
        if "return=representation" in prefer:
            return _json_reply(201, inserted, **headers)
        return Reply(201, b"", headers)

    @staticmethod
    def _clash(
        existing: list[dict[str, Any]], spec: TableSpec, row: dict[str, Any]
    ) -> tuple[str, ...] | None:
        for columns in spec.unique:
            mine = tuple(row[c] for c in columns)
            if any(tuple(other[c] for c in columns) == mine for other in existing):
                return columns
        return None

    def _select(self, request: Recorded) -> Reply:
        found = self._table(request, "accept-profile")
        if isinstance(found, Reply):
            return found
        key, spec = found
        select = ["*"]
        filters: list[tuple[str, str, str]] = []
        order: list[tuple[str, bool]] = []
        limit: int | None = None
        offset = 0
        for name, value in request.query:
            if name == "select":
                select = value.split(",")
            elif name == "order":
                for part in value.split(","):
                    column, _, direction = part.partition(".")
                    order.append((column, direction.startswith("desc")))
            elif name == "limit":
                limit = int(value)
            elif name == "offset":
                offset = int(value)
            else:
                op, _, operand = value.partition(".")
                filters.append((name, op, operand))
        columns = list(spec.columns) if select == ["*"] else select
        for column in [*columns, *(c for c, _ in order), *(c for c, _, _ in filters)]:
            if column not in spec.columns:
                return _pgrst(400, "42703", f"column {key[1]}.{column} does not exist")
        range_header = request.headers.get("range")
        if range_header:
            first, _, last = range_header.partition("-")
            offset = int(first)
            if last:
                limit = int(last) - offset + 1
        with self._lock:
            rows = list(self.rows[key])
        try:
            rows = [r for r in rows if all(_matches(r, c, op, v) for c, op, v in filters)]
        except ValueError as exc:
            return _pgrst(400, "22007", str(exc))
        for column, descending in reversed(order):
            rows.sort(key=lambda r, c=column: _sort_key(r.get(c)), reverse=descending)
        total = len(rows)
        # Supabase's "Max rows": the page is cut without a word.
        count = min(limit if limit is not None else total, self.max_rows)
        page = rows[offset : offset + count]
        # A column a stored row lacks reads as its null, as a nullable column does.
        body = [{c: _output(c, r.get(c)) for c in columns} for r in page]
        exact = "count=exact" in request.headers.get("prefer", "")
        span = f"{offset}-{offset + len(page) - 1}" if page else "*"
        content_range = f"{span}/{total if exact else '*'}"
        status = 206 if exact and len(page) < total else 200
        return _json_reply(status, body, **{"Content-Range": content_range})

    # ------------------------------------------------------------ Storage
    def _upload(self, request: Recorded) -> Reply:
        bucket, _, name = request.path.removeprefix("/storage/v1/object/").partition("/")
        if bucket not in self.buckets:
            return _storage_error(
                400, "404", "NoSuchBucket", "Bucket not found", "Bucket not found"
            )
        content_type = request.headers.get("content-type", "application/octet-stream")
        allowed = self.buckets[bucket]
        if allowed is not None and content_type.split(";")[0] not in allowed:
            return _storage_error(
                400,
                "415",
                "InvalidMimeType",
                "invalid_mime_type",
                f"mime type {content_type} is not supported",
            )
        with self._lock:
            if (bucket, name) in self.objects and request.headers.get("x-upsert") != "true":
                return _storage_error(
                    400, "409", "ResourceAlreadyExists", "Duplicate", "The resource already exists"
                )
            self.objects[(bucket, name)] = (
                request.body,
                content_type,
                request.headers.get("cache-control", "no-cache"),
            )
        return _json_reply(200, {"Id": str(uuid.uuid4()), "Key": f"{bucket}/{name}"})


def _timestamp(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f'invalid input syntax for type timestamp with time zone: "{text}"'
        ) from None


def _matches(row: dict[str, Any], column: str, op: str, operand: str) -> bool:
    value = row.get(column)
    if op == "is":
        return value is None if operand == "null" else str(value).lower() == operand
    if value is None:
        return False
    if column == "created_at":
        left: Any = _timestamp(str(value))
        right: Any = _timestamp(operand)
    else:
        left, right = str(value), operand
    return {
        "eq": left == right,
        "neq": left != right,
        "gt": left > right,
        "gte": left >= right,
        "lt": left < right,
        "lte": left <= right,
    }[op]


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return (1, dt.datetime.fromisoformat(value), "")
        except ValueError:
            return (1, dt.datetime.min.replace(tzinfo=dt.timezone.utc), value)
    return (0 if value is None else 1, value, "")


def _output(column: str, value: Any) -> Any:
    """As PostgreSQL's JSON output writes it (timestamptz normalised to UTC)."""
    if column == "created_at" and isinstance(value, str):
        return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc).isoformat()
    return value
