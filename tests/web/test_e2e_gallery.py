"""End to end, the gallery's provenance and cost views: `imagen serve` and
`imagen worker` as real processes on the mock backend, the page in headless
Chromium. The detail view's Copy parameters puts the file's A1111 text on the
clipboard and Run again makes an image with the original's seed; a PNG dropped
onto the page shows what `imagen info` says about it and runs again; the usage
view draws a bar per week with a segment per backend and lists the budgets;
the price of a paid backend shows next to Generate before a click."""

from __future__ import annotations

import base64
import io
import re
import sqlite3

import pytest
from PIL import Image, PngImagePlugin

from imagen_core.ledger import default_path, ensure_schema
from tests.helpers import write_config
from tests.web.browser import gallery_page, sidecar_of
from tests.web.processes import cli_env

pytestmark = pytest.mark.slow

A1111 = (
    "a brass owl on a shelf\n"
    "Negative prompt: blurry\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 4242, Size: 64x64, Model: sdxl"
)

# A file dropped onto the page (onto the grid, not the form's input images).
DROP_ON_PAGE = """([b64, name]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const data = new DataTransfer();
  data.items.add(new File([bytes], name, { type: "image/png" }));
  const init = { bubbles: true, cancelable: true, dataTransfer: data };
  document.getElementById("grid").dispatchEvent(new DragEvent("dragover", init));
  document.getElementById("grid").dispatchEvent(new DragEvent("drop", init));
}"""


@pytest.fixture
def env(isolated_env, output_dir) -> dict[str, str]:
    config = write_config(
        isolated_env,
        f"output: {{dir: '{output_dir}', preview: off}}\n"
        "queue: {type: sqlite, poll_s: 0.05}\n"
        "default_backend: mock\n"
        "budgets: [{period: week, limit_usd: 1.5}]\n"
        "backends:\n  mock: {type: mock}\n  paid: {type: mock, cost_usd: 0.04}\n",
    )
    return cli_env(config)


@pytest.fixture
def gallery(env):
    with gallery_page(env, permissions=["clipboard-read", "clipboard-write"]) as page:
        yield page


def cards(page, prompt: str):
    return page.locator("figure.card", has_text=prompt)


def a1111_png() -> bytes:
    meta = PngImagePlugin.PngInfo()
    meta.add_text("parameters", A1111)
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 60, 30)).save(out, "PNG", pnginfo=meta)
    return out.getvalue()


def test_copy_parameters_and_run_again_from_the_detail_view(gallery, output_dir):
    from playwright.sync_api import expect

    page = gallery
    expect(page.locator("#backend")).to_have_value("mock")
    prompt = "a copper kettle on a stove"
    page.fill("#prompt", prompt)
    page.select_option("#size", "512x512")
    page.click("#submit")  # seed 0: the mock picks one
    expect(cards(page, prompt)).to_have_count(1, timeout=30_000)
    first = cards(page, prompt).first
    original = sidecar_of(output_dir, first)
    with Image.open(output_dir / first.get_attribute("data-id")) as image:
        written = image.text["parameters"]  # the A1111 text as the file holds it

    first.click()
    box = page.locator("#detail-parameters")
    expect(box).to_be_visible()
    expect(box).to_have_value(written)
    assert f"Seed: {original['seed']}" in written
    page.click("#detail-copy")
    expect(page.locator("#detail-copied")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == written

    page.click("#detail-again")
    expect(page.locator("#detail")).to_be_hidden()
    expect(cards(page, prompt)).to_have_count(2, timeout=30_000)
    seeds = {sidecar_of(output_dir, cards(page, prompt).nth(i))["seed"] for i in range(2)}
    assert seeds == {original["seed"]}
    assert page.locator("#error").is_hidden()


def test_a_png_dropped_on_the_page_shows_its_info_and_runs_again(gallery, output_dir):
    from playwright.sync_api import expect

    page = gallery
    expect(page.locator("#backend")).to_have_value("mock")
    page.evaluate(DROP_ON_PAGE, [base64.b64encode(a1111_png()).decode(), "owl.png"])
    dialog = page.locator("#info")
    expect(dialog).to_be_visible()
    expect(page.locator("#info-name")).to_have_text("owl.png")
    report = page.locator("#info-report")
    expect(report).to_contain_text("found: a1111")
    expect(report).to_contain_text("prompt: a brass owl on a shelf")
    expect(report).to_contain_text("seed 4242")
    expect(page.locator("#info-parameters")).to_have_value(A1111)
    assert page.locator("#input-list li").count() == 0  # not taken as an input image

    page.click("#info-again")
    expect(dialog).to_be_hidden()
    expect(cards(page, "a brass owl on a shelf")).to_have_count(1, timeout=30_000)
    again = sidecar_of(output_dir, cards(page, "a brass owl on a shelf").first)
    assert again["seed"] == 4242
    assert again["request"]["negative"] == "blurry"
    assert (again["width"], again["height"]) == (64, 64)


def test_the_usage_view_stacks_spend_per_week_and_shows_budgets(gallery):
    from playwright.sync_api import expect

    page = gallery
    # Two past weeks in the ledger: W45 with two backends, W47 with one.
    db = sqlite3.connect(default_path())
    ensure_schema(db)
    rows = [
        ("2026-11-03T10:00:00+00:00", "paid", 0.08),
        ("2026-11-04T10:00:00+00:00", "cheap", 0.01),
        ("2026-11-17T10:00:00+00:00", "paid", 0.04),
    ]
    with db:
        db.executemany(
            "INSERT INTO usage (created_at, backend, backend_type, model, latency_s, cost_usd,"
            " prompt_sha256, caller, status) VALUES (?, ?, 'mock', 'm', 0.1, ?, 'x', 'me', 'ok')",
            rows,
        )
    db.close()

    expect(page.locator("#backend option")).to_have_count(2)
    page.click("#usage-toggle")
    chart = page.locator("#usage-chart")
    expect(chart).to_be_visible()
    weeks = chart.locator("g.week")
    expect(weeks).to_have_count(2)
    assert weeks.nth(0).get_attribute("data-week") == "2026-W45"
    assert weeks.nth(1).get_attribute("data-week") == "2026-W47"
    segments = [
        [rect.get_attribute("data-backend") for rect in week.locator("rect").all()]
        for week in weeks.all()
    ]
    assert segments == [["cheap", "paid"], ["paid"]]
    # Heights in proportion to the spend: $0.08 is twice $0.04.
    paid = [
        float(week.locator("rect[data-backend=paid]").get_attribute("height"))
        for week in weeks.all()
    ]
    assert paid[0] == pytest.approx(2 * paid[1])
    expect(page.locator("#usage-legend li")).to_have_count(2)
    budget = page.locator("#budgets li")
    expect(budget).to_have_count(1)
    expect(budget).to_contain_text("weekly · everything")
    expect(budget).to_contain_text("$1.50 left")


def test_the_estimate_shows_next_to_generate_before_a_click(gallery):
    from playwright.sync_api import expect

    page = gallery
    estimate = page.locator("#estimate")
    expect(page.locator("#backend")).to_have_value("mock")
    expect(estimate).to_have_text("free")
    page.select_option("#backend", "paid")
    expect(estimate).to_have_text(re.compile(r"\$0\.04 per image"))
    assert page.locator("#jobs li").count() == 0  # nothing was run to know it
