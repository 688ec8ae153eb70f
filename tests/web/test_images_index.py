"""The sidecar index: built once, then kept fresh by listing only the folders
whose mtime changed, with stable cursors."""

from __future__ import annotations

import json
import os
import time

import pytest

from imagen_web.images_index import ImagesIndex, decode_cursor, encode_cursor


def sidecar(folder, name, prompt, created="2026-11-24T10:00:00+00:00", **extra):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.png").write_bytes(b"\x89PNG")
    data = {"created": created, "image": f"{name}.png", "prompt": prompt, "seed": 1, **extra}
    (folder / f"{name}.json").write_text(json.dumps(data))


def age(path, seconds=10):
    """Make a folder's mtime old enough to be trusted (see RACY_S)."""
    past = time.time() - seconds
    os.utime(path, (past, past))


@pytest.fixture
def root(tmp_path):
    """A folder of its own: tmp_path also holds the isolated HOME of tests/conftest.py."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def prompts(index, limit=100, cursor=None):
    found, _ = index.page(cursor, limit)
    return [e["prompt"] for e in found]


def test_only_changed_folders_are_listed_again(root):
    for day in range(3):
        for i in range(4):
            sidecar(
                root / f"2026-11-2{day}",
                f"img{i}",
                f"d{day} i{i}",
                created=f"2026-11-2{day}T10:00:0{i}+00:00",
            )
    for folder in (*root.iterdir(), root):
        age(folder)
    index = ImagesIndex(root)
    index.refresh()
    assert len(index) == 12 and index.scans == 4
    assert prompts(index, 3) == ["d2 i3", "d2 i2", "d2 i1"]
    index.refresh()
    assert index.scans == 4  # nothing changed: no folder listed again

    sidecar(root / "2026-11-21", "late", "added later", created="2026-11-29T00:00:00+00:00")
    index.refresh()
    assert index.scans == 5  # that one folder only
    assert prompts(index, 1) == ["added later"]

    (root / "2026-11-20" / "img0.json").unlink()  # a worker dropping a lost job's image
    index.refresh()
    assert len(index) == 12 and "d0 i0" not in prompts(index)


def test_a_folder_listed_within_its_mtime_tick_is_listed_again(root):
    sidecar(root / "jobs", "a", "first")
    index = ImagesIndex(root)
    index.refresh()
    before = (root / "jobs").stat().st_mtime_ns
    sidecar(root / "jobs", "b", "second")
    # A coarse clock: the second file left the mtime where it was.
    os.utime(root / "jobs", ns=(before, before))
    index.refresh()
    assert sorted(prompts(index)) == ["first", "second"]


def test_new_and_removed_folders(tmp_path):
    index = ImagesIndex(tmp_path / "not-yet")
    index.refresh()
    assert len(index) == 0
    sidecar(tmp_path / "not-yet" / "a" / "b", "deep", "deep down")
    index.refresh()
    assert prompts(index) == ["deep down"]
    import shutil

    shutil.rmtree(tmp_path / "not-yet" / "a")
    index.refresh()
    assert len(index) == 0


def test_what_is_not_an_imagen_sidecar_is_left_out(root):
    sidecar(root, "good", "good one")
    (root / "notes.json").write_text('{"hello": 1}')
    (root / "list.json").write_text("[1, 2]")
    (root / "broken.json").write_text("{")
    (root / "orphan.json").write_text('{"image": "gone.png", "prompt": "x"}')
    (root / "sneaky.json").write_text('{"image": "../../etc/passwd", "prompt": "x"}')
    (root / ".imagen-1-ab.part").write_text("{}")
    index = ImagesIndex(root)
    index.refresh()
    assert prompts(index) == ["good one"]


def test_symlinked_folders_and_sidecars_are_not_followed(tmp_path):
    outside = tmp_path / "outside"
    sidecar(outside, "theirs", "not ours")
    root = tmp_path / "out"
    sidecar(root, "ours", "ours")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    (root / "link.json").symlink_to(outside / "theirs.json")
    (root / "loop").symlink_to(root, target_is_directory=True)
    index = ImagesIndex(root)
    index.refresh()
    assert prompts(index) == ["ours"]


def test_ties_within_a_second_order_by_mtime_then_path(root):
    for name in ("b", "a", "c"):
        sidecar(root, name, name)  # same "created" second, written in this order
        time.sleep(0.05)  # more than a kernel timestamp tick (up to 10 ms)
    index = ImagesIndex(root)
    index.refresh()
    assert prompts(index) == ["c", "a", "b"]


def test_cursors_page_through_everything_exactly_once(root):
    for i in range(25):
        sidecar(root, f"i{i:02d}", f"p{i:02d}", created=f"2026-11-24T10:00:{i:02d}+00:00")
    index = ImagesIndex(root)
    index.refresh()
    seen, cursor = [], None
    while True:
        found, cursor = index.page(cursor, 7)
        seen += [e["prompt"] for e in found]
        sidecar(root, f"new{len(seen)}", "newer", created="2026-11-25T00:00:00+00:00")
        index.refresh()
        if cursor is None:
            break
    assert seen == [f"p{i:02d}" for i in reversed(range(25))]


@pytest.mark.parametrize("key", [(1.5, 2, "a/b.png"), (0.0, 0, ""), (1e9, 10**18, "ü/ß.png")])
def test_cursor_round_trip(key):
    assert decode_cursor(encode_cursor(key)) == key


def test_a_large_first_build_is_in_order_and_two_sidecars_of_one_image_count_once(root):
    # The first build sorts once instead of inserting each key (quadratic at
    # 100,000); an image named by two sidecars read in that same build is one entry.
    for n in range(150):
        minute, second = divmod(n, 60)
        sidecar(
            root / f"day{n % 3}",
            f"img{n}",
            f"p{n}",
            created=f"2026-11-24T10:{minute:02d}:{second:02d}+00:00",
        )
    sidecar(root / "day0", "img0-again", "p0 again", image="img0.png")
    index = ImagesIndex(root)
    index.refresh()
    assert len(index) == 150
    found = prompts(index, 200)
    assert found[:3] == ["p149", "p148", "p147"] and found[-2:] == ["p1", found[-1]]
    assert found[-1] in ("p0", "p0 again") and len(set(found)) == 150
    sidecar(root / "day1", "late", "late", created="2026-11-25T00:00:00+00:00")
    index.refresh()
    assert prompts(index, 1) == ["late"] and len(index) == 151


def test_a_restart_reads_only_what_changed_while_the_server_was_down(root, tmp_path):
    for day in range(3):
        for i in range(3):
            sidecar(root / f"day{day}", f"img{i}", f"d{day} i{i}")
    for folder in (*root.iterdir(), root):
        age(folder)
    catalog = tmp_path / "catalog.db"
    index = ImagesIndex(root, catalog=catalog)
    index.refresh()
    assert len(index) == 9 and index.scans == 4
    index.close()

    index = ImagesIndex(root, catalog=catalog)  # a restart, nothing changed
    index.refresh()
    assert index.scans == 0 and len(index) == 9
    assert index.get("day1/img2.png")["prompt"] == "d1 i2"
    index.close()

    # While it was down: one image added, one folder removed.
    sidecar(root / "day2", "new", "added while down", created="2026-11-30T00:00:00+00:00")
    for name in ("img0", "img1", "img2"):
        for suffix in (".png", ".json"):
            (root / "day0" / f"{name}{suffix}").unlink()
    (root / "day0").rmdir()
    index = ImagesIndex(root, catalog=catalog)
    index.refresh()
    assert index.scans == 2  # the root and day2, nothing else
    assert prompts(index, 1) == ["added while down"] and len(index) == 7
    assert index.get("day0/img0.png") is None


def test_folders_untouched_for_a_day_are_stat_ed_only_by_the_sweep(root, tmp_path):
    sidecar(root / "old", "a", "old a")
    sidecar(root / "today", "a", "today a")
    age(root / "old", seconds=3 * 86400)
    index = ImagesIndex(root, catalog=tmp_path / "c.db", sweep_s=3600)
    index.refresh()
    sidecar(root / "today", "b", "today b", created="2026-11-25T00:00:00+00:00")
    sidecar(root / "old", "b", "old b", created="2026-11-26T00:00:00+00:00")
    age(root / "old", seconds=2 * 86400)  # a change, its folder still a day old (a restore)
    index.refresh()
    assert prompts(index) == ["today b", "today a", "old a"]  # "old" was not stat'ed
    index._swept_ns = 0  # the sweep is due
    index.refresh()
    assert prompts(index) == ["old b", "today b", "today a", "old a"]


def test_a_catalog_that_cannot_be_read_is_rebuilt(root, tmp_path):
    sidecar(root / "day", "a", "a")
    catalog = tmp_path / "catalog.db"
    catalog.write_bytes(b"this is not an SQLite file, it is long enough to be read" * 100)
    index = ImagesIndex(root, catalog=catalog)
    index.refresh()
    assert prompts(index) == ["a"]


def test_an_unwritable_catalog_folder_keeps_the_index_in_memory(root, tmp_path, capsys):
    sidecar(root / "day", "a", "a")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the catalog's folder would be")
    index = ImagesIndex(root, catalog=blocked / "catalog.db")
    index.refresh()
    assert prompts(index) == ["a"]
    err = capsys.readouterr().err
    assert "gallery catalog" in err and "keeping the index in memory" in err
    assert len(err.strip().splitlines()) == 1


def test_between_sweeps_a_new_folder_tree_and_a_removed_hot_folder(root, tmp_path):
    import shutil

    sidecar(root / "old" / "recent", "a", "recent a")
    sidecar(root / "old" / "stale", "a", "stale a")
    age(root / "old" / "stale", seconds=3 * 86400)
    age(root / "old", seconds=3 * 86400)  # a cold parent: not stat'ed between sweeps
    age(root / "old" / "recent")
    age(root)
    index = ImagesIndex(root, catalog=tmp_path / "c.db", sweep_s=3600)
    index.refresh()
    assert sorted(prompts(index)) == ["recent a", "stale a"]

    shutil.rmtree(root / "old" / "recent")  # hot: stat'ed, found gone
    sidecar(root / "jobs" / "2026-11-28" / "14", "j", "deep new")  # two new levels at once
    index.refresh()
    assert sorted(prompts(index)) == ["deep new", "stale a"]
    assert index.get("jobs/2026-11-28/14/j.png")["job"] == "j"

    shutil.rmtree(root)
    index.refresh()
    assert len(index) == 0
    sidecar(root / "back", "b", "back again")
    index.refresh()
    assert prompts(index) == ["back again"]


def test_a_sweep_stats_at_most_a_slice_of_the_cold_folders_per_request(root, tmp_path, monkeypatch):
    """However long the history, no request stats every folder: a sweep goes
    through the cold ones a slice per request, then waits for sweep_s."""
    import imagen_web.images_index as images_index

    monkeypatch.setattr(images_index, "SWEEP_SLICE", 10)
    for day in range(25):
        sidecar(root / f"old{day:02}", "a", f"old {day} a")
        age(root / f"old{day:02}", seconds=3 * 86400)
    age(root)
    index = ImagesIndex(root, catalog=tmp_path / "c.db", sweep_s=3600)
    index.refresh()  # at start: every folder at once
    assert len(index) == 25 and index.swept == 0
    # A change in every folder, each folder's mtime a day old (a restore).
    for day in range(25):
        sidecar(root / f"old{day:02}", "b", f"old {day} b", created="2026-11-26T00:00:00+00:00")
        age(root / f"old{day:02}", seconds=2 * 86400)
    index.refresh()
    assert index.swept == 0 and len(index) == 25  # no sweep due yet

    index._swept_ns = 0  # the sweep is due
    seen = []
    for _ in range(3):
        index.refresh()
        seen.append((index.swept, len(index)))
    assert seen == [(10, 35), (20, 45), (25, 50)]
    index.refresh()  # the sweep is over; the next one starts sweep_s after this one did
    assert index.swept == 25


def test_a_sweep_finds_folders_added_and_removed_under_a_cold_folder(root, tmp_path, monkeypatch):
    import shutil

    import imagen_web.images_index as images_index

    monkeypatch.setattr(images_index, "SWEEP_SLICE", 2)
    sidecar(root / "jobs" / "2026-01-01" / "10", "j1", "job 1")
    sidecar(root / "jobs" / "2026-01-01" / "11", "j2", "job 2")
    for folder in ("jobs/2026-01-01/10", "jobs/2026-01-01/11", "jobs/2026-01-01"):
        age(root / folder, seconds=3 * 86400)
    index = ImagesIndex(root, catalog=tmp_path / "c.db", sweep_s=3600)
    index.refresh()
    assert sorted(prompts(index)) == ["job 1", "job 2"]
    # A job run long after its submission: a new hour folder under a cold date.
    shutil.rmtree(root / "jobs" / "2026-01-01" / "10")
    sidecar(root / "jobs" / "2026-01-01" / "12", "j3", "job 3")
    age(root / "jobs" / "2026-01-01" / "12", seconds=3 * 86400)
    age(root / "jobs" / "2026-01-01", seconds=2 * 86400)
    index._swept_ns = 0
    for _ in range(3):
        index.refresh()
    assert sorted(prompts(index)) == ["job 2", "job 3"]
    assert index.get("jobs/2026-01-01/10/j1.png") is None
