"""What the CLI shows a person: the progress line, one-line summaries, reports.

Reports are plain dicts so that ``--json`` and the text output share one source.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

import attrs

from imagen_core.columns import table

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from imagen_core.budgets import BudgetStatus
    from imagen_core.comparison import Comparison
    from imagen_core.config import Config
    from imagen_core.models import Estimate, Generation, Request
    from imagen_core.pipeline import Session
    from imagen_core.plugins import ImagenPluginManager
    from imagen_core.provenance.read import ImageInfo
    from imagen_core.registry import Registry
    from imagen_core.usage import UsageRow
    from imagen_core.usage_report import WeekGroup


class StepProgress:
    """A one-line progress bar on stderr, redrawn at most 20 times a second.

    Quiet (does nothing) unless both stdout and stderr are terminals, so scripts
    that capture the output never see control characters."""

    def __init__(self, label: str, stream: TextIO | None, width: int = 24) -> None:
        self.label = label
        self.stream = stream
        self.width = width
        self._last = 0.0
        self._drawn = False

    @classmethod
    def for_terminal(cls, label: str) -> StepProgress:
        live = sys.stdout.isatty() and sys.stderr.isatty()
        return cls(label, sys.stderr if live else None)

    def __call__(self, done: int, total: int, message: str = "") -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self._last < 0.05 and done < total:
            return
        self._last = now
        filled = self.width * done // total if total > 0 else 0
        bar = "#" * filled + "." * (self.width - filled)
        count = f" {done}/{total}" if total > 0 else ""
        text = f"\r\x1b[K{self.label} [{bar}]{count} {message}".rstrip()
        self.stream.write(text)
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the line (before a warning is printed, and at the end)."""
        if self.stream is not None and self._drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._drawn = False


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "cost unknown"
    return "free" if cost == 0 else f"${cost:.4f}".rstrip("0").rstrip(".")


def summary_line(record: Generation) -> str:
    result = record.result
    assert result is not None
    parts = [
        f"{record.backend} ({result.model})",
        f"seed {result.seed}",
        f"{record.request.width}x{record.request.height}",
        f"{result.latency_s:.2f}s",
        format_cost(result.cost_usd),
    ]
    if record.sidecar:
        parts.append(f"sidecar {record.sidecar.name}")
    return "  " + " · ".join(parts)


def backends_report(config: Config, registry: Registry) -> dict[str, Any]:
    instances = []
    for inst in config.backends.values():
        settings = attrs.asdict(inst.settings) if attrs.has(type(inst.settings)) else None
        instances.append(
            {
                "name": inst.name,
                "type": inst.type,
                "default": inst.name == config.default_backend,
                "where": inst.where,
                "problem": inst.problem,
                "settings": settings,
            }
        )
    for name, reg in registry.backends.items():
        if name not in config.backends:
            instances.append(
                {
                    "name": name,
                    "type": name,
                    "default": name == config.default_backend,
                    "where": "",
                    "problem": None,
                    "settings": _defaults(reg.config),
                }
            )
    types = [{"name": reg.name, "plugin": reg.owner} for reg in registry.backends.values()]
    return {"default": config.default_backend, "instances": instances, "types": types}


def _defaults(cls: type) -> dict[str, Any] | None:
    try:
        return attrs.asdict(cls())
    except TypeError:  # the type has required keys: it has no usable defaults
        return None


def plugins_report(pm: ImagenPluginManager) -> dict[str, Any]:
    """Every plugin with what it registered (``registers``: kind -> type names),
    and the plugins that failed (to import, or in a hook)."""
    from imagen_core.registry import registered_by_plugin

    registers = registered_by_plugin(pm)  # first: a failing hook skips its plugin
    plugins = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        if plugin is None:  # blocked (IMAGEN_DISABLE_PLUGINS)
            continue
        info = pm.describe(plugin)
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or [])
        plugins.append(
            {
                "name": name,
                "distribution": info.distribution,
                "version": info.version,
                "module": info.module,
                "builtin": info.builtin,
                "hooks": hooks,
                "registers": registers.get(name, {}),
            }
        )
    plugins.sort(key=lambda p: (not p["builtin"], p["distribution"]))
    failed = [failure._asdict() for failure in pm.failures]
    return {"plugins": plugins, "failed": failed}


def comparison_table(comparison: Comparison) -> str:
    """backend | status | latency | cost | path (or the error), then the run's files."""
    rows = [("backend", "status", "latency", "cost", "path")]
    for outcome in comparison.outcomes:
        generation = outcome.generation
        if generation is None or generation.result is None:
            rows.append((outcome.backend, "failed", "-", "-", outcome.error or ""))
            continue
        result = generation.result
        rows.append(
            (
                outcome.backend,
                "ok",
                f"{result.latency_s:.2f}s",
                format_cost(result.cost_usd),
                str(generation.path),
            )
        )
    lines = table(rows).splitlines()
    lines.append(f"seed {comparison.request.seed} · folder {comparison.folder}")
    if comparison.sheet:
        lines.append(f"contact sheet: {comparison.sheet}")
    if comparison.sidecar:
        lines.append(f"sidecar: {comparison.sidecar}")
    return "\n".join(line.rstrip() for line in lines)


def usage_report(groups: list[WeekGroup]) -> str:
    rows = [
        ("week", "backend", "model", "caller", "images", "failed", "cost", "basis", "mean latency")
    ]
    for g in groups:
        latency = f"{g.mean_latency_s:.2f}s" if g.mean_latency_s is not None else "-"
        rows.append(
            (
                g.week,
                g.backend,
                g.model or "-",
                g.caller,
                str(g.count),
                str(g.failed),
                format_cost(g.cost_usd) if g.cost_usd is not None else "unknown",
                g.cost_basis or "-",
                latency,
            )
        )
    total = sum(g.count for g in groups)
    failed = sum(g.failed for g in groups)
    cost = sum(g.cost_usd or 0.0 for g in groups)
    noun = "image" if total == 1 else "images"
    # As the rows say it: "free", "$0.065" (no "$0.0000" under rows saying free).
    footer = f"total: {total} {noun}, {failed} failed, estimated cost {format_cost(cost)}"
    return (table(rows) + "\n" if groups else "no usage recorded in that period\n") + footer


# Columns of ``imagen usage --raw``: fixed widths, so that lines can be printed as the
# rows are read (a longer value pushes the rest of its line along). The error goes
# last and is not padded, so one long error does not widen every line.
_RAW_WIDTHS = (19, 10, 14, 10, 11, 7, 16, 12)


def usage_lines(rows: Iterable[UsageRow]) -> Iterator[str]:
    """``imagen usage --raw``: a header, then one line per generation, lazily."""

    def line(cells: tuple[str, ...]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, _RAW_WIDTHS, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    header = (
        "time (UTC)",
        "backend",
        "model",
        "caller",
        "status",
        "latency",
        "cost",
        "prompt",
        "error",
    )
    empty = True
    for r in rows:
        if empty:
            yield line(header)
            empty = False
        yield line(
            (
                r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.backend,
                r.model or "-",
                r.caller,
                r.status,
                f"{r.latency_s:.2f}s" if r.latency_s is not None else "-",
                format_cost(r.cost_usd) + (f" ({r.cost_basis})" if r.cost_basis else "")
                if r.cost_usd is not None
                else "unknown",
                r.prompt_sha256[:12],
                r.error or "",
            )
        )
    if empty:
        yield "no usage recorded in that period"


def info_report(info: ImageInfo) -> str:
    """``imagen info``'s text for one file."""
    lines = [info.path]
    if not info.found:
        lines.append("  no generation metadata")
        if info.width:
            lines.append(f"  {info.format} {info.width}x{info.height}")
        return "\n".join(lines)
    lines.append(f"  found: {', '.join(info.found)}")
    if info.prompt:
        lines.append(f"  prompt: {info.prompt}")
    if info.negative:
        lines.append(f"  negative: {info.negative}")
    facts = [
        f"seed {info.seed}" if info.seed is not None else None,
        f"{info.steps} steps" if info.steps else None,
        f"{info.width}x{info.height}" if info.width else None,
        f"sampler {info.sampler}" if info.sampler else None,
        f"cfg {info.cfg:g}" if info.cfg is not None else None,
        f"strength {info.strength:g}" if info.strength is not None else None,
        f"style {info.style}" if info.style else None,
    ]
    lines.append("  " + " · ".join(fact for fact in facts if fact))
    if info.model or info.backend:
        backend = f"{info.backend} ({info.backend_type})" if info.backend_type else info.backend
        lines.append(f"  model: {info.model or '?'}" + (f" · backend {backend}" if backend else ""))
    if info.comfyui_workflow:
        lines.append("  ComfyUI workflow inside: drop the file onto ComfyUI to load it")
    if info.c2pa is not None:
        who = info.c2pa.get("issuer") or "unknown issuer"
        made = info.c2pa.get("generator")
        lines.append(f"  C2PA manifest: signed by {who}" + (f" ({made})" if made else ""))
    return "\n".join(lines)


def cost_report(session: Session, estimates: list[tuple[Request, Estimate]]) -> str:
    """``--dry-run``: per backend, its model and the estimated cost, and the total."""
    lines = ["dry run: nothing was generated"]
    total, unknown = 0.0, 0
    for request, estimate in estimates:
        instance = session.config.backend(request.backend, session.registry)
        settings = instance.settings
        model = getattr(settings, "model", None) or getattr(settings, "workflow", None)
        if estimate.usd is None:
            price, unknown = "price unknown", unknown + 1
        else:
            total += estimate.usd
            price = "free" if estimate.usd == 0 else f"{format_cost(estimate.usd)} per image"
        why = f" ({estimate.source})" if estimate.source else ""
        lines.append(f"  {instance.name:<24} {model or instance.type:<32} {price}{why}")
    count = len(estimates)
    tail = f"; {unknown} of unknown price" if unknown else ""
    lines.append(f"total: {format_cost(total)} for {count} image{'s' * (count != 1)}{tail}")
    return "\n".join(lines)


_SHADES = "█▓▒░#=+*"


def spend_chart(groups: list[WeekGroup], width: int = 40) -> str:
    """``imagen usage --chart``: spend per ISO week, one bar each, stacked by backend."""
    weeks: dict[str, dict[str, float]] = {}
    for group in groups:
        per_backend = weeks.setdefault(group.week, {})
        per_backend[group.backend] = per_backend.get(group.backend, 0.0) + (group.cost_usd or 0.0)
    if not weeks:
        return "no usage recorded in that period"
    spenders = sorted(
        {b for spend in weeks.values() for b, usd in spend.items() if usd > 0},
        key=lambda b: -sum(spend.get(b, 0.0) for spend in weeks.values()),
    )
    shade = {b: _SHADES[min(i, len(_SHADES) - 1)] for i, b in enumerate(spenders)}
    top = max(sum(spend.values()) for spend in weeks.values())
    lines = ["spend per week, stacked by backend"]
    for week in sorted(weeks):
        bar = ""
        for backend in spenders:
            usd = weeks[week].get(backend, 0.0)
            if usd > 0 and top > 0:
                bar += shade[backend] * max(1, round(usd / top * width))
        lines.append(f"{week} │{bar:<{width}}│ {format_cost(sum(weeks[week].values()))}")
    if spenders:
        legend = "  ".join(f"{shade[b]} {b}" for b in spenders)
        lines.append(f"{'':8} {legend}")
    return "\n".join(lines)


def budget_report(statuses: list[BudgetStatus]) -> str:
    """Each budget's spend in its current period."""
    rows = [("budget", "for", "spent", "reserved", "limit", "left", "resets (UTC)")]
    for status in statuses:
        budget = status.budget
        scope = ", ".join(
            f"{what} {value}"
            for what, value in (("backend", budget.backend), ("caller", budget.caller))
            if value
        )
        rows.append(
            (
                budget.period,
                scope or "everything",
                f"${status.spent_usd:.4f}",
                f"${status.reserved_usd:.4f}",
                f"${budget.limit_usd:.2f}",
                f"${status.remaining_usd:.4f}",
                status.resets.strftime("%Y-%m-%d %H:%M"),
            )
        )
    return table(rows)
