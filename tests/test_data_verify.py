"""`toxlab data verify`: every recorded data file is present, readable and has its recorded size and
SHA-256; a changed, truncated or missing file (or a folder one level off) exits 2 with one line that says
what to do; the committed record covers every file toxlab reads."""

import gzip
import json
import os
import shutil

import pytest

from tests.fixtures.make_data import make_data_dir
from toxlab.cli import main
from toxlab.data import corpora


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """A fresh fixture data folder, its sums recorded beside it, and TOXLAB_DATA pointing at it."""
    root = make_data_dir(tmp_path / "data")
    sums = tmp_path / "sums.json"
    monkeypatch.setenv("TOXLAB_DATA", str(root))
    assert main(["data", "verify", "--record", "--checksums", str(sums)]) == 0
    return root, sums


def _verify(sums, capsys):
    code = main(["data", "verify", "--checksums", str(sums)])
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err.strip()


def test_record_then_verify_is_ok(recorded, capsys):
    root, sums = recorded
    capsys.readouterr()
    record = json.loads(sums.read_text())["files"]
    assert set(record) == set(corpora.folder_files(root))
    assert {rel for rel, _ in corpora.FILES.values()} <= set(record)
    code, out, err = _verify(sums, capsys)
    assert code == 0 and err == ""
    assert len(out) == len(record) + 1 and all(line.startswith("ok ") for line in out[:-1])
    assert out[-1].startswith(f"all {len(record)} recorded files")


def test_missing_file(recorded, capsys):
    root, sums = recorded
    (root / "clean/c4_snippets.jsonl").unlink()
    code, out, err = _verify(sums, capsys)
    assert code == 2
    assert "missing           clean/c4_snippets.jsonl" in out
    assert len(err.splitlines()) == 1 and "1 missing" in err and "restore the files" in err


def test_altered_file_same_size(recorded, capsys):
    root, sums = recorded
    path = root / "judge/davidson_labeled_data.csv"
    text = path.read_text()
    path.write_text(text.replace("hello", "HELLO"))  # same size, different bytes
    code, out, err = _verify(sums, capsys)
    assert code == 2
    assert any(line.startswith("checksum mismatch") and line.split()[2] == "judge/davidson_labeled_data.csv"
               for line in out)
    assert "1 checksum mismatch" in err and len(err.splitlines()) == 1


def test_truncated_file(recorded, capsys):
    root, sums = recorded
    path = root / "toxic/4chan_pol_lines.txt.gz"
    path.write_bytes(path.read_bytes()[:40])
    code, out, err = _verify(sums, capsys)
    assert code == 2
    assert any(line.startswith("size mismatch") and "toxic/4chan_pol_lines.txt.gz" in line for line in out)
    assert "1 size mismatch" in err


def test_extra_file_is_listed_but_tolerated(recorded, capsys):
    root, sums = recorded
    with gzip.open(root / "toxic/extra_board.txt.gz", "wt") as handle:
        handle.write("bump\n")
    (root / ".DS_Store").write_text("hidden files are not data")
    (root / "NOTES.md").write_text("documentation is not data")
    code, out, err = _verify(sums, capsys)
    assert code == 0, err
    assert "extra             toxic/extra_board.txt.gz (not recorded)" in out
    assert not any(".DS_Store" in line or "NOTES.md" in line for line in out)


def test_folder_one_level_off_says_where_the_data_is(recorded, capsys, monkeypatch, tmp_path):
    root, sums = recorded
    parent = tmp_path / "parent"
    parent.mkdir()
    shutil.move(str(root), parent / "data")
    monkeypatch.setenv("TOXLAB_DATA", str(parent))
    code, out, err = _verify(sums, capsys)
    assert code == 2
    assert f"set TOXLAB_DATA={parent / 'data'}" in err and len(err.splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(recorded, capsys):
    root, sums = recorded
    path = root / "probe/toxigen_annotated.jsonl"
    path.chmod(0)
    try:
        code, out, err = _verify(sums, capsys)
    finally:
        path.chmod(0o644)
    assert code == 2 and any(line.startswith("unreadable") for line in out)


@pytest.mark.parametrize("content", ["", "{not json", '{"files": [1, 2]}', '{"files": {"a": {"bytes": 1}}}'])
def test_bad_checksums_file(recorded, capsys, content):
    _, sums = recorded
    sums.write_text(content)
    code, out, err = _verify(sums, capsys)
    assert code == 2 and out == []
    assert "cannot read the checksums file" in err and "--record" in err and len(err.splitlines()) == 1


def test_committed_record_covers_every_file_toxlab_reads():
    record = corpora.read_checksums()
    assert {rel for rel, _ in corpora.FILES.values()} <= set(record)
    for rel, entry in record.items():
        assert len(entry["sha256"]) == 64 and entry["bytes"] > 0, rel


@pytest.mark.skipif(not (corpora.PROJECT_ROOT.parent / "shared" / "data").is_dir(), reason="no staged data folder")
def test_the_staged_data_folder_matches_the_committed_record(monkeypatch):
    monkeypatch.delenv("TOXLAB_DATA", raising=False)
    checks = corpora.verify()
    assert corpora.verify_problem(checks, corpora.data_root()) is None, [c for c in checks if not c.ok]
