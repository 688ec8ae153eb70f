"""Headless Chromium (through Playwright) on a real `imagen serve`, for the
end-to-end tests of the gallery."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.web.processes import CLI, Process, serve

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page, ViewportSize

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")


@contextlib.contextmanager
def chromium_page(
    *, viewport: ViewportSize | None = None, permissions: Sequence[str] = ()
) -> Iterator[Page]:
    """A page of a fresh headless Chromium. A script error on the page (an
    exception nothing caught) fails the test when the block ends."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            options: dict[str, Any] = {"permissions": list(permissions)}
            if viewport is not None:
                options["viewport"] = viewport
            page = browser.new_context(**options).new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page
            assert errors == [], errors
        finally:
            browser.close()


@contextlib.contextmanager
def gallery_page(
    env: dict[str, str], *, cli: str = CLI, permissions: Sequence[str] = ()
) -> Iterator[Page]:
    """`imagen serve` and an `imagen worker` with ``env``, and a Chromium page
    open on the gallery."""
    require_chromium()
    server, url = serve(env, cli=cli)
    worker = Process("worker", env=env, cli=cli)
    try:
        with chromium_page(permissions=permissions) as page:
            page.goto(url)
            yield page
    finally:
        worker.stop()
        server.stop()


def sidecar_of(output_dir: Path, card: Locator) -> dict[str, Any]:
    """The sidecar of the image a gallery card shows."""
    data: dict[str, Any] = json.loads(
        (output_dir / str(card.get_attribute("data-id"))).with_suffix(".json").read_text()
    )
    return data
