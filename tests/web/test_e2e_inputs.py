"""End to end, with input images: `imagen serve` and `imagen worker` as real
processes (with the test backend `editor`, which takes images), the gallery in
headless Chromium. Images given by file picker, drag-and-drop and paste become
a job's inputs; Edit on a generated image makes a new image whose sidecar
names the first one's sha256; Variations repeats it on a new seed."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers import write_config
from tests.web.browser import gallery_page, sidecar_of
from tests.web.editor import RUN_CLI
from tests.web.processes import cli_env

pytestmark = pytest.mark.slow

DROP = """([b64, name, how]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/png" }));
  const init = { bubbles: true, cancelable: true };
  if (how === "drop") {
    document.getElementById("drop").dispatchEvent(new DragEvent("drop", { ...init, dataTransfer: data }));
  } else {
    document.dispatchEvent(new ClipboardEvent("paste", { ...init, clipboardData: data }));
  }
}"""


def png(color: tuple[int, int, int], size: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), color).save(buffer, "PNG")
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def env(isolated_env, output_dir) -> dict[str, str]:
    config = write_config(
        isolated_env,
        f"default_backend: editor\noutput: {{dir: '{output_dir}', preview: off}}\n"
        "queue: {type: sqlite, poll_s: 0.05}\n"
        "backends:\n  editor: {type: editor}\n  mock: {type: mock}\n",
    )
    return cli_env(config)


@pytest.fixture
def gallery(env):
    with gallery_page(env, cli=RUN_CLI) as page:
        yield page


def wait_done(page, prompt: str):
    from playwright.sync_api import expect

    job = page.locator("#jobs li", has_text=prompt).first
    expect(job).to_have_class(re.compile(r"\bdone\b"), timeout=30_000)
    card = page.locator("figure.card", has_text=prompt)
    expect(card).to_have_count(1, timeout=15_000)
    return card


def test_images_by_picker_drop_and_paste_become_the_jobs_inputs(gallery, output_dir, tmp_path):
    from playwright.sync_api import expect

    page = gallery
    picked, dropped, pasted = png((200, 0, 0)), png((0, 200, 0)), png((0, 0, 200))
    (tmp_path / "picked.png").write_bytes(picked)
    expect(page.locator("#backend")).to_have_value("editor")
    page.set_input_files("#image-file", str(tmp_path / "picked.png"))
    page.evaluate(DROP, [base64.b64encode(dropped).decode(), "dropped.png", "drop"])
    page.evaluate(DROP, [base64.b64encode(pasted).decode(), "pasted.png", "paste"])
    inputs = page.locator("#input-list li")
    expect(inputs).to_have_count(3)
    expect(inputs.first).to_contain_text("to edit")

    prompt = "three squares, one lighthouse"
    page.fill("#prompt", prompt)
    page.select_option("#size", "512x512")
    page.fill("#strength", "0.6")
    page.click("#submit")
    card = wait_done(page, prompt)

    written = sidecar_of(output_dir, card)
    assert written["metadata"]["inputs"] == [
        ["image", sha(picked)],
        ["reference", sha(dropped)],
        ["reference", sha(pasted)],
    ]
    assert written["request"]["strength"] == 0.6
    card.click()
    made_from = page.locator("#detail-inputs figure")
    expect(made_from).to_have_count(3)
    expect(made_from.first).to_have_attribute("data-sha256", sha(picked))
    link = made_from.first.locator("a")
    expect(link).to_have_attribute("href", f"/images/inputs/{sha(picked)}.png")
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0",
        arg=made_from.first.locator("img").element_handle(),
    )


def test_edit_on_a_generated_image_and_variations(gallery, output_dir):
    from playwright.sync_api import expect

    page = gallery
    expect(page.locator("#backend")).to_have_value("editor")
    page.fill("#prompt", "a lighthouse by day")
    page.select_option("#size", "512x512")
    page.click("#submit")
    first = wait_done(page, "a lighthouse by day")
    first_bytes = (output_dir / first.get_attribute("data-id")).read_bytes()

    first.click()
    expect(page.locator("#detail-edit")).to_be_visible()
    page.click("#detail-edit")
    expect(page.locator("#detail")).to_be_hidden()
    expect(page.locator("#input-list li")).to_have_count(1)
    expect(page.locator("#size")).to_have_value("512x512")
    page.fill("#prompt", "the lighthouse at night")
    page.click("#submit")
    edited = wait_done(page, "the lighthouse at night")
    written = sidecar_of(output_dir, edited)
    assert [(i["role"], i["sha256"]) for i in written["request"]["inputs"]] == [
        ("image", sha(first_bytes))
    ]
    assert (
        Path(written["request"]["inputs"][0]["source"]).name
        == Path(first.get_attribute("data-id")).name
    )

    edited.click()
    expect(page.locator("#detail-inputs figure")).to_have_count(1)
    expect(page.locator("#detail-inputs figure").first).to_have_attribute(
        "data-sha256", sha(first_bytes)
    )
    page.click("#detail-variations")
    cards = page.locator("figure.card", has_text="the lighthouse at night")
    expect(cards).to_have_count(2, timeout=30_000)
    sidecars = [sidecar_of(output_dir, cards.nth(i)) for i in range(2)]
    assert sidecars[0]["seed"] != sidecars[1]["seed"]
    assert all(s["request"]["inputs"][0]["sha256"] == sha(first_bytes) for s in sidecars)


def test_a_smaller_mask_is_scaled_and_the_page_says_so(gallery, output_dir, tmp_path):
    from playwright.sync_api import expect

    page = gallery
    (tmp_path / "photo.png").write_bytes(png((200, 0, 0), 24))
    Image.new("L", (12, 12), 255).save(tmp_path / "small-mask.png")
    expect(page.locator("#backend")).to_have_value("editor")
    page.set_input_files("#image-file", str(tmp_path / "photo.png"))
    page.set_input_files("#mask-file", str(tmp_path / "small-mask.png"))
    page.fill("#prompt", "repaint it all")
    page.select_option("#size", "512x512")
    expect(page.locator("#notice")).to_be_hidden()
    page.click("#submit")
    expect(page.locator("#notice-text")).to_have_text(
        "mask (small-mask.png) is 12x12; scaled it to the image's 24x24"
    )
    expect(page.locator("#error")).to_be_hidden()
    card = wait_done(page, "repaint it all")
    mask = sidecar_of(output_dir, card)["request"]["inputs"][-1]
    assert (mask["role"], mask["width"], mask["height"]) == ("mask", 24, 24)
    page.click("#notice-close")
    expect(page.locator("#notice")).to_be_hidden()
