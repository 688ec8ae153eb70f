"""Find the entry points of one group without importing importlib.metadata.

importlib.metadata costs ~11 ms on every start (it imports the email package to
parse METADATA files). Discovery needs only each ``*.dist-info/entry_points.txt``
and the distribution's name and version, which the directory name carries
(PEP 376/427: ``{name}-{version}.dist-info``). Anything this fast path does not
understand (an ``.egg-info``, a zip file on sys.path) sends the whole search to
importlib.metadata, so the answer is always the same as its answer.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Collection


class EntryPoint(NamedTuple):
    name: str
    value: str
    dist: str
    version: str

    def load(self) -> Any:
        module_name, _, attr = self.value.split("[")[0].partition(":")  # drop [extras]
        obj: Any = importlib.import_module(module_name.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
        return obj


def normalise(dist_name: str) -> str:
    """PEP 503 normalisation: ``Imagen_Mock`` and ``imagen.mock`` -> ``imagen-mock``."""
    out = dist_name.lower()
    for char in "_.":
        out = out.replace(char, "-")
    while "--" in out:
        out = out.replace("--", "-")
    return out


def _parse(text: str, group: str) -> list[tuple[str, str]]:
    entries, inside = [], False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            entries.append((name.strip(), value.strip()))
    return entries


class _Unusual(Exception):
    """A sys.path entry the fast path does not read."""


def _fast(group: str, only: Collection[str] | None) -> list[EntryPoint]:
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for entry in sys.path:
        folder = entry or "."
        try:
            # os, not pathlib: a Path per name of site-packages doubles this scan.
            names = sorted(os.listdir(folder))  # noqa: PTH208
        except NotADirectoryError:
            raise _Unusual(entry) from None
        except OSError:
            continue
        for name in names:
            if name.endswith((".egg-info", ".egg")):
                raise _Unusual(name)
            if not name.endswith(".dist-info"):
                continue
            dist, _, version = name[: -len(".dist-info")].partition("-")
            key = normalise(dist)
            if key in seen:  # the first on sys.path wins, as in importlib.metadata
                continue
            seen.add(key)
            if only is not None and key not in only:
                continue  # IMAGEN_LOAD_PLUGINS: the others' files need no reading
            try:
                points = os.path.join(folder, name, "entry_points.txt")  # noqa: PTH118
                with open(points, encoding="utf-8") as file:
                    text = file.read()
            except OSError:
                continue
            if f"[{group}]" in text:
                found += [EntryPoint(n, v, key, version) for n, v in _parse(text, group)]
    return found


def _slow(group: str) -> list[EntryPoint]:
    from importlib import metadata

    return [
        EntryPoint(ep.name, ep.value, normalise(ep.dist.name), ep.dist.version)
        if ep.dist
        else EntryPoint(ep.name, ep.value, ep.value, "")
        for ep in metadata.entry_points(group=group)
    ]


def find(group: str, only: Collection[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group``, one per (distribution, name); with
    ``only``, those of the distributions named there (normalised names)."""
    try:
        return _fast(group, only)
    except _Unusual:
        return [ep for ep in _slow(group) if only is None or ep.dist in only]
