"""The cache: keys depend on every input, writes are atomic, manifests carry hashes, bad roots fail clearly."""

import json
import os

import pytest

from toxlab.core import artifacts
from toxlab.core.errors import CacheError


def test_key_depends_on_every_input():
    base = artifacts.stage_key("s", 1, {"a": 1}, {"up": "k"}, seed=0)
    assert base == artifacts.stage_key("s", 1, {"a": 1}, {"up": "k"}, seed=0)
    others = [artifacts.stage_key("t", 1, {"a": 1}, {"up": "k"}, 0),
              artifacts.stage_key("s", 2, {"a": 1}, {"up": "k"}, 0),
              artifacts.stage_key("s", 1, {"a": 2}, {"up": "k"}, 0),
              artifacts.stage_key("s", 1, {"a": 1}, {"up": "j"}, 0),
              artifacts.stage_key("s", 1, {"a": 1}, {"up": "k"}, 1)]
    assert len({base, *others}) == 6


def test_cached_builds_once_and_records_hashes(tmp_path):
    calls = []

    def build(out, work):
        calls.append(1)
        (out / "x.txt").write_text("hello")

    first = artifacts.cached("demo", 1, {"n": 1}, build, root=tmp_path)
    second = artifacts.cached("demo", 1, {"n": 1}, build, root=tmp_path)
    assert len(calls) == 1 and first.path == second.path
    files = first.manifest["files"]
    assert files["x.txt"]["sha256"] == artifacts.file_sha256(first.file("x.txt"))
    assert json.loads(first.file("config.json").read_text()) == {"n": 1}
    assert "torch" in first.manifest["versions"]


def test_failed_build_leaves_nothing_behind(tmp_path):
    def build(out, work):
        (out / "half.txt").write_text("partial")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        artifacts.cached("demo", 1, {"n": 2}, build, root=tmp_path)
    leftovers = [p for p in (tmp_path / "demo").iterdir() if not p.name.startswith(".work-")]
    assert leftovers == []


def test_altered_file_is_detected(tmp_path):
    def build(out, work):
        (out / "x.txt").write_text("a")

    entry = artifacts.cached("demo", 1, {"n": 3}, build, root=tmp_path)
    entry.file("x.txt").write_text("b")
    with pytest.warns(UserWarning, match="does not match its recorded hash"):
        assert artifacts.load("demo", entry.key, tmp_path) is None
    assert not entry.path.exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_cache_root_non_root(tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    monkeypatch.setenv("TOXLAB_CACHE", str(locked / "cache"))
    with pytest.raises(CacheError, match="not writable"):
        artifacts.cache_root()


def test_cache_root_that_is_a_file(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("TOXLAB_CACHE", str(blocker / "cache"))
    with pytest.raises(CacheError, match="not writable"):
        artifacts.cache_root()


def test_lookup_only_never_computes(tmp_path):
    def build(out, work):
        (out / "x.txt").write_text("a")

    with artifacts.lookup_only():
        with pytest.raises(artifacts.CacheMiss):
            artifacts.cached("demo", 1, {"n": 9}, build, root=tmp_path)
    artifacts.cached("demo", 1, {"n": 9}, build, root=tmp_path)
    with artifacts.lookup_only():
        assert artifacts.cached("demo", 1, {"n": 9}, build, root=tmp_path).file("x.txt").read_text() == "a"


def test_verified_entries_are_not_hashed_again_until_a_file_changes(tmp_path, monkeypatch):
    """A second load of an entry verified in this process re-hashes nothing while its files keep their size,
    mtime and inode; a changed file is hashed again (and caught); a just-written entry is always re-hashed
    (its files' mtimes are too recent to trust, as git's "racy clean" rule)."""
    def build(out, work):
        (out / "x.txt").write_text("a" * 100)

    entry = artifacts.cached("demo", 1, {"n": 4}, build, root=tmp_path)
    hashed = []
    real_hash = artifacts.file_sha256
    monkeypatch.setattr(artifacts, "file_sha256", lambda p, *a: hashed.append(p.name) or real_hash(p, *a))
    assert artifacts.load("demo", entry.key, tmp_path) is not None and "x.txt" in hashed  # too recent
    old = entry.path.stat().st_mtime - 60
    for p in entry.path.iterdir():
        os.utime(p, (old, old))
    hashed.clear()
    for _ in range(3):
        assert artifacts.load("demo", entry.key, tmp_path) is not None
    assert sorted(hashed) == ["config.json", "x.txt"]  # once each, then remembered
    entry.file("x.txt").write_text("b" * 100)  # same size, new mtime
    with pytest.warns(UserWarning, match="does not match its recorded hash"):
        assert artifacts.load("demo", entry.key, tmp_path) is None
    assert hashed.count("x.txt") == 2 and not entry.path.exists()


def _writes(text: str):
    def build(out, work):
        (out / "x.txt").write_text(text)
    return build


def test_a_ledger_lists_every_entry_returned_with_its_build_time(tmp_path, monkeypatch):
    ledger = tmp_path / "ledger.jsonl"
    artifacts.cached("demo", 1, {"n": 0}, _writes("before"), root=tmp_path)
    monkeypatch.setenv(artifacts.LEDGER_ENV, str(ledger))
    built = artifacts.cached("demo", 1, {"n": 1}, _writes("1"), root=tmp_path)
    found = artifacts.cached("demo", 1, {"n": 1}, lambda out, work: None, root=tmp_path)  # a cache hit
    old = artifacts.cached("demo", 1, {"n": 0}, lambda out, work: None, root=tmp_path)  # built before the ledger
    used = artifacts.read_ledger(ledger)
    assert used == {f"demo/{built.key}": built.manifest["wall_s"], f"demo/{old.key}": old.manifest["wall_s"]}
    assert found.key == built.key and len(ledger.read_text().splitlines()) == 3
    monkeypatch.delenv(artifacts.LEDGER_ENV)
    artifacts.cached("demo", 1, {"n": 2}, _writes("2"), root=tmp_path)
    assert len(ledger.read_text().splitlines()) == 3


def test_a_resumed_build_counts_the_time_of_the_cut_one(tmp_path, monkeypatch):
    """wall_s of an entry whose first build was cut is the first build's time up to its last saved state plus
    the resumed build's, not the last stretch alone (the ledgers sum wall_s into a level's cost)."""
    clock = [1000.0]
    monkeypatch.setattr(artifacts.time, "time", lambda: clock[0])

    def cut(out, work):
        checkpoint = work / "checkpoint"
        checkpoint.write_text("step 600")
        os.utime(checkpoint, (1300.0, 1300.0))  # saved 300 s into the build
        clock[0] = 1400.0  # killed 100 s later: that stretch is redone by the resumed build
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        artifacts.cached("demo", 1, {"n": 9}, cut, root=tmp_path)

    def resumed(out, work):
        assert (work / "checkpoint").read_text() == "step 600"
        clock[0] += 80.0
        (out / "x.txt").write_text("done")

    entry = artifacts.cached("demo", 1, {"n": 9}, resumed, root=tmp_path)
    assert entry.manifest["wall_s"] == pytest.approx(300.0 + 80.0)
    assert not any(p.name.startswith(".work-") for p in (tmp_path / "demo").iterdir())


def test_a_failed_build_without_resumable_state_leaves_no_work_folder(tmp_path):
    def build(out, work):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        artifacts.cached("demo", 1, {"n": 10}, build, root=tmp_path)
    assert list((tmp_path / "demo").iterdir()) == []
