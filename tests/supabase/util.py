"""Helpers for the imagen-supabase tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from imagen_core import Generation, Request, generate
from tests.helpers import write_config

OWNER = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
PROMPT = "A red fox in the snow at dawn"


def supabase_config(
    home: Path,
    *,
    owner: str | None = OWNER,
    cloud_sync: str | None = None,
    keys: str = "",
    naming: str | None = None,
) -> Path:
    """imagen.yaml with a supabase block (``owner=None``: no block at all)."""
    text = "output:\n"
    if cloud_sync is not None:
        text += f"  cloud_sync: {cloud_sync}\n"
    if naming is not None:
        text += f"  naming: '{naming}'\n"
    if text == "output:\n":
        text = ""
    if owner is not None or keys:
        text += "sinks:\n  supabase:\n"
        if owner is not None:
            text += f"    owner_user_id: '{owner}'\n"
        text += "".join(f"    {line}\n" for line in keys.splitlines())
    return write_config(home, text)


def make(prompt: str = PROMPT, *, seed: int = 7, **options: object) -> Generation:
    return generate(Request(prompt, width=16, height=16, seed=seed), **options)  # type: ignore[arg-type]


def sync_warnings(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The ``imagen: cloud sync: …`` lines printed so far (and no other warning)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("imagen: ")]
    others = [line for line in lines if not line.startswith("imagen: cloud sync: ")]
    assert not others, others
    return lines
