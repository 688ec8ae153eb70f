"""End to end: `imagen serve` and `imagen worker` as real processes on the mock
backend, the gallery in headless Chromium (Debian's chromium driven by
Playwright): a prompt typed into the form becomes a job, the worker runs it, and
the image appears in the grid."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import job_files, write_config
from tests.web.browser import chromium_page, require_chromium
from tests.web.processes import CLI, Process, cli_env, serve

pytestmark = pytest.mark.slow

TOKEN = "e2e-token-0123456789abcdef"
BASE64_TOKEN = "q8+fX/2wZrJ0bK9m+Tn/aW1pZ2Vu=="  # `openssl rand -base64 24` makes such


@pytest.fixture
def env(isolated_env, output_dir) -> dict[str, str]:
    config = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        "queue: {type: sqlite, poll_s: 0.05}\n"
        "backends:\n  mock: {type: mock}\n  other: {type: mock, model: other-model}\n",
    )
    return cli_env(config)


@pytest.mark.parametrize(
    "token", [None, TOKEN, BASE64_TOKEN], ids=["loopback", "token", "base64-token"]
)
def test_a_prompt_from_the_gallery_appears_in_the_grid(env, output_dir, token):
    require_chromium()
    from playwright.sync_api import expect

    server, url = serve(env, *(["--token", token] if token else []))
    worker = Process("worker", env=env)
    try:
        with chromium_page() as page:
            page.goto(url + (f"?token={token}" if token else ""))
            if token:  # stored, and out of the address bar at once
                expect(page).to_have_url(url)
            expect(page.locator("#backend option")).to_have_count(2)
            expect(page.locator("#backend")).to_have_value("mock")

            prompt = "a glass lighthouse on a basalt cliff"
            page.fill("#prompt", prompt)
            page.select_option("#backend", "other")
            page.select_option("#size", "512x512")
            page.fill("#seed", "1234")
            page.click("#submit")

            job = page.locator("#jobs li").first
            expect(job).to_contain_text(prompt)
            expect(job).to_have_class(re.compile(r"\bdone\b"), timeout=30_000)
            expect(job).to_contain_text("seed 1234")

            card = page.locator("figure.card", has_text=prompt)
            expect(card).to_have_count(1, timeout=15_000)
            image = card.locator("img")
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
            )
            assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [512, 512]
            card.hover()
            expect(card.locator(".meta")).to_contain_text("other · seed 1234")
            card.click()
            expect(page.locator("#detail")).to_be_visible()
            expect(page.locator("#detail-fields")).to_contain_text("other-model")
            assert page.locator("#error").is_hidden()
    finally:
        worker.stop()
        server.stop()
    made = [p for p in job_files(output_dir) if p.suffix == ".png"]
    assert len(made) == 1
    assert any(" done " in line for line in worker.lines), worker.lines


def test_a_job_submitted_elsewhere_is_listed_and_its_image_appears(env):
    require_chromium()
    from playwright.sync_api import expect

    server, url = serve(env)
    worker = None
    try:
        with chromium_page() as page:
            page.goto(url)
            expect(page.locator("#backend option")).to_have_count(2)
            prompt = "a kite over a salt flat"
            submitted = subprocess.run(
                [sys.executable, "-c", CLI, "submit", prompt, "--size", "256x256"],
                env=env,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
            )
            job_id = submitted.stdout.strip()
            row = page.locator(f'#jobs li[data-job="{job_id}"]')
            expect(row).to_have_class(re.compile(r"\bqueued\b"), timeout=15_000)
            expect(row).to_contain_text(prompt)

            worker = Process("worker", env=env)
            expect(row).to_have_class(re.compile(r"\bdone\b"), timeout=30_000)
            expect(page.locator("figure.card", has_text=prompt)).to_have_count(1, timeout=15_000)
    finally:
        if worker is not None:
            worker.stop()
        server.stop()


def test_the_gallery_shows_api_errors(env):
    require_chromium()
    from playwright.sync_api import expect

    server, url = serve(env)
    try:
        with chromium_page() as page:
            page.goto(url)
            expect(page.locator("#backend option")).to_have_count(2)
            # A prompt longer than the API takes (the textarea's maxlength is bypassed).
            page.eval_on_selector("#prompt", "el => el.removeAttribute('maxlength')")
            page.fill("#prompt", "x" * 4001)
            page.click("#submit")
            expect(page.locator("#error")).to_be_visible()
            expect(page.locator("#error-text")).to_have_text(
                "prompt: is 4001 characters long; the limit is 4000"
            )
    finally:
        server.stop()


def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """One GET with ``target`` sent as it is: no client folds its ``..`` away."""
    host, port = re.match(r"http://([^:]+):(\d+)/", url).groups()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def test_the_real_server_refuses_traversal_as_sent_on_the_wire(env, output_dir, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG private")
    output_dir.mkdir(parents=True)
    (output_dir / "link.png").symlink_to(secret)
    server, url = serve(env)
    try:
        for target in (
            "/images/../../../secret.png",
            "/images/%2e%2e/%2e%2e/%2e%2e/secret.png",
            "/images/..%2F..%2F..%2Fsecret.png",
            f"/images/{secret}",
            "/images/link.png",
            "/images/../../../../../../etc/passwd",
        ):
            status, body = raw_get(url, target)
            assert status in (400, 404), target
            assert b"private" not in body and b"root:" not in body, target
    finally:
        server.stop()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 0), (signal.SIGINT, 130)])
def test_sigterm_stops_it_cleanly_and_ctrl_c_is_interrupted(env, sig, code):
    server, url = serve(env)
    assert raw_get(url, "/v1/backends")[0] == 200
    server.proc.send_signal(sig)
    assert server.proc.wait(15) == code
    server.stop()
    assert ("imagen: interrupted" in server.lines) == (code == 130), server.lines


def test_a_client_that_hangs_up_stops_its_synchronous_generation(env, isolated_env):
    config = Path(env["IMAGEN_CONFIG"])
    config.write_text(config.read_text() + "  slow: {type: mock, latency_s: 60}\n")
    server, url = serve(env)
    try:
        host, port = re.match(r"http://([^:]+):(\d+)/", url).groups()
        body = json.dumps({"prompt": "a slow one", "backend": "slow", "steps": 600}).encode()
        conn = socket.create_connection((host, int(port)), timeout=10)
        conn.sendall(
            f"POST /v1/generate HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(1.0)  # the backend is rendering
        hung_up = time.monotonic()
        conn.close()

        from imagen_core import Session

        ledger = Session(config).source("ledger")
        while not (rows := list(ledger.rows(since=None, until=None))):
            assert time.monotonic() - hung_up < 15, "the 60 s backend call was not stopped"
            time.sleep(0.1)
        assert [(r.backend, r.status, r.error) for r in rows] == [("slow", "failed", "interrupted")]
        assert raw_get(url, "/v1/backends")[0] == 200  # the server lives on
        assert server.proc.poll() is None
    finally:
        server.stop()


def test_the_gallery_fits_the_page_and_shows_whole_images(env, tmp_path):
    """A prompt without spaces stays inside a 1,280 px page (the job row was
    2,830 px wide), and a 768×512 thumbnail is shown whole, not cropped square."""
    require_chromium()
    from playwright.sync_api import expect

    server, url = serve(env)  # no worker: the job stays queued, listed under the form
    long_prompt = "neoncitystreetatnightintherain" * 50  # 1,500 letters: nowhere to break
    try:
        host, port = re.match(r"http://([^:]+):(\d+)/", url).groups()
        for path, body in (
            ("/v1/jobs", {"prompt": long_prompt, "width": 64, "height": 64}),
            ("/v1/generate", {"prompt": long_prompt, "width": 768, "height": 512, "seed": 3}),
        ):
            data = json.dumps(body).encode()
            with socket.create_connection((host, int(port)), timeout=60) as conn:
                conn.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n".encode()
                    + data
                )
                assert conn.recv(64).split()[1] in (b"200", b"202"), path
        with chromium_page(viewport={"width": 1280, "height": 900}) as page:
            page.goto(url)
            row = page.locator("#jobs li").first
            expect(row).to_contain_text("neoncitystreet", timeout=15_000)
            card = page.locator("figure.card").first
            image = card.locator("img")
            expect(image).to_have_count(1, timeout=15_000)
            page.wait_for_function(
                "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
            )
            page.screenshot(path=str(tmp_path / "gallery.png"))
            width = page.evaluate("innerWidth")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            for box in (row.bounding_box(), card.bounding_box()):
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
            shown = image.bounding_box()
            frame = card.bounding_box()
            assert shown is not None and frame is not None
            # The whole image: its own proportions, inside the card, filling its width.
            assert shown["width"] / shown["height"] == pytest.approx(768 / 512, rel=0.02)
            assert (
                shown["x"] >= frame["x"]
                and shown["x"] + shown["width"] <= frame["x"] + frame["width"] + 0.5
            )
            assert shown["width"] == pytest.approx(frame["width"] - 2, abs=2)  # less its border

            card.click()  # the detail wraps the long prompt inside the dialog
            dialog = page.locator("#detail")
            expect(dialog).to_be_visible()
            assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth")
            assert page.evaluate("document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(tmp_path / "detail.png"))
    finally:
        server.stop()
