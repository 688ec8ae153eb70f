"""The MCP tools: thin adapters over ``Session``, as the CLI and imagen-web are.

Every image made here goes through ``Session.generate``: it lands on disk with
its sidecar, in the ledger and in the gallery like any other. A tool that fails
answers ``isError`` with imagen's one-line message, which an agent can act on.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
import attrs
from mcp.server import MCPServer
from mcp.server.mcpserver import Context  # noqa: TC002 -- resolved at run time to inject it
from mcp.types import CallToolResult, TextContent

from imagen_core._version import __version__
from imagen_core.cancel import CancelScope
from imagen_core.errors import ImagenError, UsageError, describe
from imagen_core.models import Request, capabilities_of, estimate_of
from imagen_mcp.previews import preview_content

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from imagen_core.comparison import Comparison
    from imagen_core.models import Generation, Progress
    from imagen_core.pipeline import Session

T = TypeVar("T")

INSTRUCTIONS = """\
imagen generates images from a prompt on the backends its owner configured
(local ComfyUI servers, Replicate, OpenAI, fal, a mock). list_backends shows
them with what each accepts and its price per image. generate_image and
edit_image return the image (a preview when large) and the path of the full
file on the server's disk. Paid backends may ask for confirm_spend: true.
For long work, submit_job and get_job use imagen's job queue."""


def build_server(session: Session) -> MCPServer:
    """An MCPServer whose tools run on ``session``."""
    # WARNING: the SDK logs at INFO to stderr, which is imagen serve's banner and a
    # host's log; imagen's own warnings still reach it.
    server: MCPServer = MCPServer(
        "imagen", version=__version__, instructions=INSTRUCTIONS, log_level="WARNING"
    )

    @server.tool()
    async def generate_image(
        ctx: Context,
        prompt: str,
        backend: str | None = None,
        size: str | None = None,
        seed: int = 0,
        steps: int = 0,
        negative: str = "",
        style: str | None = None,
        images: list[str] | None = None,
        mask: str | None = None,
        strength: float | None = None,
        confirm_spend: bool = False,
    ) -> CallToolResult:
        """Generate one image from a prompt and save it (PNG + JSON sidecar).

        backend: a configured backend name (list_backends); omitted = the default.
        size: WIDTHxHEIGHT, e.g. 1024x768 (default 1024x1024). seed 0 = random;
        the seed used is returned. steps 0 = the backend's default. negative:
        what to avoid. style: a style name from imagen.yaml. images: paths of
        input images on this machine (the first is the image to edit, the others
        references); mask: path of a mask (white = repaint; scaled to the
        image when only its size differs); strength 0-1: how
        far from the input image to go. confirm_spend: run even when the
        estimated cost is above the configured limit."""
        return await make_image(
            session,
            ctx,
            lambda notes: make_request(
                prompt, backend, size, seed, steps, negative, style, images, mask, strength, notes
            ),
            confirm_spend,
        )

    @server.tool()
    async def edit_image(
        ctx: Context,
        image: str,
        prompt: str,
        references: list[str] | None = None,
        mask: str | None = None,
        strength: float | None = None,
        backend: str | None = None,
        size: str | None = None,
        seed: int = 0,
        confirm_spend: bool = False,
    ) -> CallToolResult:
        """Edit an existing image as the prompt says ("make the sky red") and save the result.

        image: path of the image to edit on this machine (a path returned by
        generate_image works). references: further images the backend may use.
        mask: path of a mask (white = repaint); one of another size but the
        image's shape is scaled to the image. strength 0-1: how far from the
        image to go. size: WIDTHxHEIGHT; omitted = the image's own size. The
        backend must accept input images (list_backends shows which do)."""

        def build(notes: list[str]) -> Request:
            inputs = [image, *(references or [])]
            request = make_request(
                prompt, backend, size, seed, 0, "", None, inputs, mask, strength, notes
            )
            if size is None and request.image is not None:  # the image's own size
                first = request.image
                request = attrs.evolve(request, width=first.width, height=first.height)
            return request

        return await make_image(session, ctx, build, confirm_spend)

    @server.tool()
    async def compare_backends(
        ctx: Context,
        prompt: str,
        backends: list[str],
        size: str | None = None,
        seed: int = 0,
        steps: int = 0,
        negative: str = "",
        style: str | None = None,
        confirm_spend: bool = False,
    ) -> CallToolResult:
        """Run the same prompt and seed on several backends and return a labelled contact sheet.

        backends: two or more configured backend names. Returns the sheet (a
        preview when large), and for each backend its image path, model,
        latency, cost or error. One failing backend does not stop the others."""
        try:
            base = make_request(prompt, None, size, seed, steps, negative, style, None, None, None)
            requests = [attrs.evolve(base, backend=name) for name in backends]
            refused = spend_guard(session, requests, confirm_spend)
            if refused is not None:
                return refused
            comparison = await run_in_thread(
                ctx, lambda progress, cancel: _compare(session, base, backends)
            )
        except ImagenError as exc:
            return failure(str(exc))
        return comparison_result(comparison)

    @server.tool()
    def list_backends() -> CallToolResult:
        """The backends this imagen can use: name, type, model, whether it is the
        default, what inputs it accepts (text, input images, strength, mask) and
        its price per image where known."""
        rows = backend_rows(session)
        lines = [
            f"{row['name']}{' (default)' if row['default'] else ''}: {row['type']}, "
            + (
                f"unusable: {row['problem']}"
                if row["problem"]
                else f"accepts {row['accepts']}, {_price_text(row['price_usd'])}"
            )
            for row in rows
        ]
        return CallToolResult(
            content=[TextContent(text="\n".join(lines) or "no backends")],
            structured_content={"backends": rows},
        )

    @server.tool()
    def usage_summary(
        since: str | None = None,
        until: str | None = None,
        group_by: Literal["week", "backend", "model", "caller"] = "week",
    ) -> CallToolResult:
        """What was generated and what it cost, from imagen's ledger.

        since/until: UTC dates YYYY-MM-DD (inclusive), omitted = all time.
        group_by: week, backend, model or caller."""
        try:
            groups = usage_groups(session, _date(since, "since"), _date(until, "until"), group_by)
        except ImagenError as exc:
            return failure(str(exc))
        lines = [
            f"{g['key']}: {g['images']} images, {g['failed']} failed, {_price_text(g['cost_usd'])}"
            for g in groups
        ]
        return CallToolResult(
            content=[TextContent(text="\n".join(lines) or "nothing generated in that period")],
            structured_content={"group_by": group_by, "groups": groups},
        )

    @server.tool()
    def submit_job(
        prompt: str,
        backend: str | None = None,
        size: str | None = None,
        seed: int = 0,
        steps: int = 0,
        negative: str = "",
        style: str | None = None,
        images: list[str] | None = None,
        mask: str | None = None,
        strength: float | None = None,
        confirm_spend: bool = False,
    ) -> CallToolResult:
        """Queue a generation for imagen's workers and return its job id at once.

        For long or many generations: poll with get_job. Arguments as
        generate_image. A worker (`imagen worker`) must be running somewhere on
        the same queue."""
        notes: list[str] = []
        try:
            request = make_request(
                prompt, backend, size, seed, steps, negative, style, images, mask, strength, notes
            )
            instance, backend_obj = session.backend(request.backend)
            session.check_capabilities(request, instance.name, backend_obj)
            refused = spend_guard(session, [request], confirm_spend)
            if refused is not None:
                return refused
            queue = session.queue()
            try:
                job = queue.submit(request, backend=instance.name)
            finally:
                queue.close()
        except ImagenError as exc:
            return failure(str(exc))
        data = {"job_id": job.id, "status": job.status, "backend": job.backend, "warnings": notes}
        return CallToolResult(
            content=[TextContent(text=_with_notes(f"queued job {job.id} on {job.backend}", notes))],
            structured_content=data,
        )

    @server.tool()
    def get_job(job_id: str) -> CallToolResult:
        """A queued job's status (queued, running, done, failed, canceled); when
        done, its image (a preview when large) and the path of the full file."""
        queue = None
        try:
            queue = session.queue()
            job = queue.get(job_id)
        except ImagenError as exc:
            return failure(str(exc))
        finally:
            if queue is not None:
                queue.close()
        if job is None:
            return failure(f"no job {job_id!r}; submit_job returns the ids")
        data: dict[str, Any] = {
            "job_id": job.id,
            "status": job.status,
            "backend": job.backend,
            "attempts": job.attempts,
            "error": job.error,
            "path": job.result_path,
            "seed": job.metadata.get("seed"),
            "cost_usd": job.metadata.get("cost_usd"),
        }
        text = f"job {job.id}: {job.status}"
        if job.error:
            text += f" ({job.error})"
        content: list[Any] = [TextContent(text=text)]
        if job.status == "done" and job.result_path:
            text += f"; image at {job.result_path}"
            content = [TextContent(text=text)]
            preview = preview_content(job.result_path)
            if preview is not None:
                content.append(preview)
        return CallToolResult(content=content, structured_content=data)

    return server


# ----------------------------------------------------------------- requests


def make_request(
    prompt: str,
    backend: str | None,
    size: str | None,
    seed: int,
    steps: int,
    negative: str,
    style: str | None,
    images: Sequence[str] | None,
    mask: str | None,
    strength: float | None,
    notes: list[str] | None = None,
) -> Request:
    """A Request from tool arguments; every problem is a UsageError naming it.
    The input images are read as the CLI and the web API read them
    (``imagen_core.inputs``): a mask of another size but the image's shape is
    scaled to it, which is said in ``notes`` (else on stderr)."""
    from imagen_core.inputs import STDIN, load_inputs

    width, height = parse_size(size) if size else (1024, 1024)
    paths = list(images or [])
    if mask is not None and not paths:
        raise UsageError("a mask needs an image to apply to: give images too")
    if STDIN in (*paths, mask):
        raise UsageError(
            "'-' would read stdin, which is not a file here: give the path of an image file"
        )
    inputs = load_inputs(paths, mask, warn=notes.append if notes is not None else None)
    return Request(
        prompt=prompt,
        negative=negative,
        width=width,
        height=height,
        seed=seed,
        steps=steps,
        style=style,
        backend=backend or None,
        inputs=inputs,
        strength=strength,
    )


def parse_size(text: str) -> tuple[int, int]:
    import re

    match = re.fullmatch(r"\s*(\d{1,9})\s*[xX×]\s*(\d{1,9})\s*", text)
    if not match:
        raise UsageError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1024x768")
    return int(match.group(1)), int(match.group(2))


def _date(text: str | None, name: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"{name} {text!r} is not a date like 2026-05-01") from None


# ----------------------------------------------------------------- spending


def spend_guard(
    session: Session, requests: Sequence[Request], confirmed: bool
) -> CallToolResult | None:
    """None when the call may run; else the answer that asks for confirm_spend.

    The estimate is the sum of the backends' own estimates. A backend that does
    not know its price (a local server) does not stop the call: the limit is
    about money that is known to be spent."""
    limit = session.config.mcp.confirm_above_usd
    if limit is None or confirmed:
        return None
    total = 0.0
    for request in requests:
        _, backend = session.backend(request.backend)
        price = estimate_of(backend, request).usd
        total += price or 0.0
    if total <= limit:
        return None
    text = (
        f"not run: the estimated cost is ${total:.4f}, above the limit of ${limit:.2f} "
        "(mcp.confirm_above_usd in imagen.yaml); call again with confirm_spend: true to run it"
    )
    return CallToolResult(
        content=[TextContent(text=text)],
        structured_content={
            "ran": False,
            "estimated_cost_usd": round(total, 6),
            "confirm_above_usd": limit,
        },
        is_error=True,
    )


# ----------------------------------------------------------------- running


async def make_image(
    session: Session, ctx: Context, build: Callable[[list[str]], Request], confirm_spend: bool
) -> CallToolResult:
    """One generation for a tool: build the request (noting what was changed on
    the way, such as a scaled mask), guard the spend, run it."""
    notes: list[str] = []
    try:
        request = build(notes)
        refused = spend_guard(session, [request], confirm_spend)
        if refused is not None:
            return refused
        generation = await run_in_thread(
            ctx, lambda progress, cancel: _generate(session, request, progress, cancel)
        )
    except ImagenError as exc:
        return failure(str(exc))
    return generation_result(generation, notes)


async def run_in_thread(ctx: Context, work: Callable[[Progress, CancelScope], T]) -> T:
    """Run ``work`` in a worker thread, its progress sent to the client as
    progress notifications; when the client cancels the call, the backend call
    is stopped as Ctrl-C stops it (``CancelScope``)."""
    scope = CancelScope()

    def progress(done: int, total: int, message: str = "") -> None:
        try:
            anyio.from_thread.run(ctx.report_progress, done, total, message or None)
        except Exception:  # a client gone mid-call must not stop the image
            return

    try:
        return await anyio.to_thread.run_sync(lambda: work(progress, scope), abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        scope.cancel()
        raise


def _generate(
    session: Session, request: Request, progress: Progress, cancel: CancelScope
) -> Generation:
    try:
        return session.generate(request, preview=False, progress=progress, cancel=cancel)
    except KeyboardInterrupt:
        raise ImagenError("canceled") from None


def _compare(session: Session, request: Request, backends: Sequence[str]) -> Comparison:
    from imagen_core.comparison import compare

    return compare(request, backends, session=session, preview=False)


# ----------------------------------------------------------------- answers


def failure(message: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=message)], is_error=True)


def generation_data(generation: Generation) -> dict[str, Any]:
    result = generation.result
    assert result is not None and generation.path is not None
    from imagen_core.pipeline import image_size

    width, height = image_size(result.image) or (
        generation.request.width,
        generation.request.height,
    )
    return {
        "path": str(generation.path),
        "sidecar": str(generation.sidecar) if generation.sidecar else None,
        "seed": result.seed,
        "backend": generation.backend,
        "backend_type": generation.backend_type,
        "model": result.model,
        "width": width,
        "height": height,
        "latency_s": result.latency_s,
        "cost_usd": result.cost_usd,
    }


def generation_result(generation: Generation, notes: Sequence[str] = ()) -> CallToolResult:
    data = {**generation_data(generation), "warnings": list(notes)}
    text = (
        f"saved {data['path']} ({data['width']}x{data['height']}, {data['backend']} "
        f"{data['model']}, seed {data['seed']}, {data['latency_s']:.2f}s, "
        f"{_price_text(data['cost_usd'])})"
    )
    content: list[Any] = [TextContent(text=_with_notes(text, notes))]
    preview = preview_content(data["path"])
    if preview is not None:
        content.append(preview)
    return CallToolResult(content=content, structured_content=data)


def comparison_result(comparison: Comparison) -> CallToolResult:
    entries = []
    for outcome in comparison.outcomes:
        if outcome.ok and outcome.generation is not None:
            entries.append({**generation_data(outcome.generation), "error": None})
        else:
            entries.append({"backend": outcome.backend, "error": outcome.error})
    lines = [
        f"{e['backend']}: {e['path']}" if e["error"] is None else f"{e['backend']}: {e['error']}"
        for e in entries
    ]
    sheet = str(comparison.sheet) if comparison.sheet else None
    content: list[Any] = [TextContent(text=f"contact sheet {sheet}\n" + "\n".join(lines))]
    if sheet:
        preview = preview_content(sheet)
        if preview is not None:
            content.append(preview)
    return CallToolResult(
        content=content,
        structured_content={
            "sheet": sheet,
            "folder": str(comparison.folder),
            "seed": comparison.request.seed,
            "results": entries,
        },
        is_error=not any(e["error"] is None for e in entries),
    )


def _with_notes(text: str, notes: Sequence[str]) -> str:
    """An answer's text with what imagen warned about on the way, a line each."""
    return "\n".join([text, *(f"warning: {note}" for note in notes)])


def _price_text(usd: float | None) -> str:
    if usd is None:
        return "price unknown"
    return "free" if usd == 0 else f"${usd:.4f} per image"


# ----------------------------------------------------------------- listings


def backend_rows(session: Session) -> list[dict[str, Any]]:
    """Every configured backend instance and usable installed type, with what it
    accepts and its price for a default 1024x1024 image."""
    config = session.config
    names = list(dict.fromkeys([*config.backends, *session.registry.backends]))
    rows = []
    for name in names:
        configured = config.backends.get(name)
        row: dict[str, Any] = {
            "name": name,
            "type": configured.type if configured else name,
            "default": name == config.default_backend,
            "model": None,
            "accepts": None,
            "capabilities": None,
            "price_usd": None,
            "price_basis": "unknown",
            "problem": None,
        }
        try:
            _, backend = session.backend(name)
            caps = capabilities_of(backend)
            estimate = estimate_of(backend, Request("price", backend=name))
            settings = configured.settings if configured else None
            row.update(
                model=getattr(settings, "model", None) or getattr(settings, "workflow", None),
                accepts=caps.summary(),
                capabilities=caps.as_dict(),
                price_usd=estimate.usd,
                price_basis=estimate.basis,
            )
        except Exception as exc:  # one broken block must not hide the others
            row["problem"] = describe(exc)
        rows.append(row)
    return rows


def usage_groups(
    session: Session, since: dt.date | None, until: dt.date | None, group_by: str
) -> list[dict[str, Any]]:
    from imagen_core.usage_report import iso_week

    groups: dict[str, dict[str, Any]] = {}
    for row in session.source("ledger").rows(since=since, until=until):
        key = iso_week(row.created_at) if group_by == "week" else str(getattr(row, group_by) or "-")
        group = groups.setdefault(
            key, {"key": key, "images": 0, "failed": 0, "cost_usd": 0.0, "cost_unknown": 0}
        )
        ok = row.status == "ok"
        if ok:
            group["images"] += 1
        else:
            group["failed"] += 1
        if row.cost_usd is None:
            group["cost_unknown"] += ok
        else:
            group["cost_usd"] = round(group["cost_usd"] + row.cost_usd, 6)
    return [groups[key] for key in sorted(groups)]
