from __future__ import annotations

import re
from pathlib import Path

import pytest

from imagen_core.errors import OutputError
from imagen_core.naming import candidates, render, resolve, slugify, template_problem

SLUG = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@pytest.mark.parametrize(
    ("prompt", "slug"),
    [
        ("A Lighthouse at Dusk!", "a-lighthouse-at-dusk"),
        ("Crème brûlée, über café", "creme-brulee-uber-cafe"),
        ("  --multiple   spaces__and///slashes--  ", "multiple-spaces-and-slashes"),
        ("../../etc/passwd", "etc-passwd"),
    ],
)
def test_slugify_examples(prompt: str, slug: str) -> None:
    assert slugify(prompt) == slug


@pytest.mark.parametrize("prompt", ["🦊🌙✨", "!!! ??? ...", "日本語のプロンプト", "-"])
def test_slug_is_never_empty_and_always_safe(prompt: str) -> None:
    slug = slugify(prompt)
    assert SLUG.match(slug), slug


def test_prompts_without_letters_still_get_distinct_slugs() -> None:
    assert slugify("🦊") != slugify("🌙")
    assert slugify("🦊") == slugify("🦊")


def test_slug_is_at_most_40_chars_and_ends_cleanly() -> None:
    slug = slugify("an extremely long prompt about a great many things " * 5)
    assert len(slug) <= 40
    assert SLUG.match(slug)
    assert not slug.endswith("-")


def test_unknown_placeholders_stay_literal_and_values_are_path_safe() -> None:
    rendered = render(
        "{date}/{nope}-{slug}.{ext}", {"date": "2026-05-08", "slug": "../up", "ext": "png"}
    )
    assert rendered == "2026-05-08/{nope}-..-up.png"
    assert render("{backend}", {"backend": ".."}) == "_"


@pytest.mark.parametrize(
    "template", ["/etc/{slug}.png", "../{slug}.png", "a/../../{slug}.png", "", "C:/x/{slug}.png"]
)
def test_templates_leaving_the_output_dir_are_rejected(template: str, tmp_path: Path) -> None:
    assert template_problem(template)
    with pytest.raises(OutputError):
        resolve(tmp_path, template, {"slug": "x"})


def test_resolve_stays_inside_even_through_a_symlinked_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "escape").symlink_to(tmp_path)
    assert resolve(out, "{a}/{slug}.png", {"a": "2026", "slug": "cat"}) == out / "2026" / "cat.png"
    with pytest.raises(OutputError, match=r"outside output\.dir"):
        resolve(out, "escape/{slug}.png", {"slug": "cat"})


def test_candidates_add_numeric_suffixes() -> None:
    gen = candidates(Path("/x/cat.png"))
    assert [next(gen) for _ in range(3)] == [
        Path("/x/cat.png"),
        Path("/x/cat-1.png"),
        Path("/x/cat-2.png"),
    ]
