"""Output paths: the naming template, the slug, and collision-free reservation.

Rules: a resolved path never leaves ``output.dir``; an existing file is never
overwritten (a numeric suffix is added instead).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from imagen_core.errors import OutputError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from imagen_core.plugins import ImagenPluginManager

SLUG_MAX = 40
# Every generation names its file: the three regular expressions this module
# used (placeholders, the slug's separators, a drive letter) cost ≈ 0.35 ms to
# compile at each start, so each is done by hand; tests/core/test_naming.py
# checks each against its regex.
_SLUG_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
# ASCII that is not [a-z0-9] becomes "-" (what r"[^a-z0-9]+" matches, one by one).
_TO_DASH = {code: "-" for code in range(128) if chr(code) not in _SLUG_CHARS}


def slugify(prompt: str, max_len: int = SLUG_MAX) -> str:
    """Lowercase ASCII of the prompt, only ``[a-z0-9-]``, at most ``max_len``, never empty."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    # re.sub(r"[^a-z0-9]+", "-", text).strip("-"): the runs of [a-z0-9], joined by "-".
    slug = "-".join(filter(None, ascii_text.lower().translate(_TO_DASH).split("-")))
    if len(slug) > max_len:
        cut = slug[:max_len]
        # Prefer to end at a word boundary when one is reasonably close.
        if "-" in cut[max_len // 2 :]:
            cut = cut.rsplit("-", 1)[0]
        slug = cut.strip("-")
    if not slug:
        # Emoji or punctuation only: a short stable hash keeps prompts apart.
        import hashlib  # only here: listing commands import this module too

        slug = "img-" + hashlib.sha256(prompt.encode()).hexdigest()[:8]
    return slug


def template_problem(template: str) -> str | None:
    """Why a naming template can never be used, or None if it is fine."""
    if not template.strip():
        return "the template is empty"
    pure = PurePosixPath(template.replace("\\", "/"))
    if pure.is_absolute() or _drive_letter(template):
        return "must be a path relative to output.dir, not an absolute path"
    if ".." in pure.parts:
        return "must not contain '..': names stay inside output.dir"
    if template.endswith(("/", "\\")):
        return "ends with '/': name the file too, e.g. '{date}/{slug}.{ext}'"
    longest = max(len(part.encode()) for part in PurePosixPath(render(template, _LONGEST)).parts)
    if longest > NAME_MAX:
        return (
            f"can make a file or folder name {longest} bytes long (a {SLUG_MAX}-character "
            f"slug, a 20-digit seed); file systems take {NAME_MAX}: shorten it"
        )
    return None


def _drive_letter(template: str) -> bool:
    """``re.match(r"^[A-Za-z]:", template)``: a Windows drive (``C:``)."""
    first = template[:1]
    return template[1:2] == ":" and first.isascii() and first.isalpha()


def _placeholders(template: str) -> Iterator[tuple[int, int, str]]:
    """Each ``{name}`` of ``template`` (start, end, name), left to right, as
    ``re.finditer(r"\\{([A-Za-z_][A-Za-z0-9_]*)\\}", template)`` finds them."""
    start = template.find("{")
    while start != -1:
        end = template.find("}", start + 1)
        if end == -1:
            return
        name = template[start + 1 : end]
        if _is_name(name):
            yield start, end + 1, name
            start = template.find("{", end + 1)
        else:
            start = template.find("{", start + 1)


def _is_name(text: str) -> bool:
    """``[A-Za-z_][A-Za-z0-9_]*``."""
    return (
        text.isascii()
        and (text[:1].isalpha() or text[:1] == "_")
        and (text.replace("_", "a").isalnum())
    )


def known_placeholders(pm: ImagenPluginManager) -> list[str]:
    """The names the plugins' ``naming_fields`` give (asked once with a sample
    request; one that raises is left out: it is reported when it is used)."""
    from imagen_core.models import Request, Result

    request = Request("a sample prompt")
    result = Result(image=b"", seed=1, model="sample", backend="sample")
    impls = pm.hook.naming_fields.get_hookimpls()
    known: dict[str, None] = {}
    for impl in impls:
        others = [other.plugin for other in impls if other is not impl]
        try:
            given = pm.subset_hook_caller("naming_fields", others)(request=request, result=result)
        except Exception:
            continue
        for fields in given:
            known.update(dict.fromkeys(fields or {}))
    return list(known)


def unknown_placeholders(template: str, known: list[str]) -> list[str]:
    """The ``{placeholders}`` of ``template`` not in ``known``: they stay literal."""
    found = dict.fromkeys(name for _start, _end, name in _placeholders(template))
    return [name for name in found if name not in known]


# The longest value each built-in placeholder takes (``{backend}``: a long name).
NAME_MAX = 255
_LONGEST = {
    "date": "2026-12-31",
    "time": "235959",
    "slug": "x" * SLUG_MAX,
    "seed": "1" * 20,
    "backend": "b" * 32,
    "ext": "webp",
}


def path_safe(value: Any) -> str:
    """``value`` as one path component: no separators, never ``.`` or ``..``."""
    text = str(value)
    text = text.replace("/", "-").replace("\\", "-").replace("\x00", "")
    return "_" if text in ("", ".", "..") else text


def render(template: str, fields: dict[str, Any]) -> str:
    """Fill ``{placeholders}``; unknown ones are left as they are."""
    parts, done = [], 0
    for start, end, name in _placeholders(template):
        if name in fields:
            parts += [template[done:start], path_safe(fields[name])]
            done = end
    return "".join([*parts, template[done:]])


def resolve(output_dir: Path, template: str, fields: dict[str, Any]) -> Path:
    """The target path for one image, guaranteed to lie inside ``output_dir``."""
    problem = template_problem(template)
    if problem:
        raise OutputError(f"output.naming {template!r} {problem}")
    relative = render(template, fields)
    base = output_dir.resolve()
    target = (base / relative).resolve()
    if target == base or base not in target.parents:
        raise OutputError(
            f"output.naming {template!r} resolves to {target}, outside output.dir {base}"
        )
    return target


def candidates(path: Path) -> Iterator[Path]:
    """``path``, then ``stem-1.ext``, ``stem-2.ext``, ... (never-ending)."""
    yield path
    n = 1
    while True:
        yield path.with_name(f"{path.stem}-{n}{path.suffix}")
        n += 1
