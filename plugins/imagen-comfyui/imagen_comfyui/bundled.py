"""The workflows shipped in this package, and what a ``workflow:`` value names.

Package data is read from the file system beside this module: importlib.resources
costs ~5 ms of imports, and the config block's validation runs at every start.
"""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).resolve().parent / "workflows"
META_SUFFIX = ".meta.json"  # a workflow's data: NAME.meta.json beside NAME.json


def bundled_names() -> list[str]:
    """The workflows shipped in this package, by name."""
    return sorted(
        entry.name.removesuffix(".json")
        for entry in FOLDER.iterdir()
        if entry.name.endswith(".json") and not entry.name.endswith(META_SUFFIX)
    )


def looks_like_path(spec: str) -> bool:
    return spec.endswith(".json") or "/" in spec or "\\" in spec or spec.startswith("~")


def spec_problem(spec: str) -> str | None:
    """Why ``spec`` (the ``workflow`` key) can name no workflow, without reading files."""
    if not spec.strip():
        return "workflow is empty: give a bundled workflow name or a path to a .json file"
    if looks_like_path(spec):
        return None
    names = bundled_names()
    if spec in names:
        return None
    import difflib

    close = difflib.get_close_matches(spec, names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"unknown bundled workflow {spec!r}{hint}; bundled: {', '.join(names)}; "
        "or give the path of an API-format .json file"
    )
