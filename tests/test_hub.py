"""toxlab.data.hub writers, offline: hand-written harmless rows go through injected loaders (never the network),
and the files they write must be read back by toxlab.data.corpora."""

from __future__ import annotations

import gzip
import json
import sys

import pytest

from toxlab import cli
from toxlab.core.config import DataConfig
from toxlab.core.errors import DataError
from toxlab.data import hub
from toxlab.data.corpora import FILES, PRETRAIN_SOURCES, check_layout, read_documents

ARTICLE = "This is a calm example article about a quiet town and its small library, number {0}. " * 4


def fake(rows_by_split: dict[str, list[dict]]):
    """A loader over fixed rows: split -> iterable of dict rows."""
    return lambda split: iter(rows_by_split[split])


def failing_after(rows: list[dict], exc: BaseException):
    """A loader that yields `rows` and then raises `exc`, like a connection dropping mid-download."""
    def load(split):
        yield from rows
        raise exc
    return load


def read_jsonl(path):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def read_lines(path):
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return handle.read().split("\n")


C4_ROWS = {
    "validation": [
        {"text": "A short held out example sentence about gardening in spring.", "url": "https://a.example/1"},
        {"text": "Twowordsnospace", "url": "https://a.example/2"},
        {"text": "   ", "url": "https://a.example/3"},
        {"text": "Another held out line,\nwith a newline and  double  spaces in it.", "url": "https://a.example/4"},
    ],
    "train": [{"text": ARTICLE.format(i), "url": f"https://b.example/{i}", "timestamp": "2019"}
              for i in range(5)],
}
POL_ROWS = [
    {"text": "this is a rude example post\nsecond line of it\n\n"},
    {"text": "another rude example post"},
    {"text": "this is a rude example post"},  # duplicate line: dropped
    {"text": "  \n"},
    {"text": None},
    {"text": "a line\r\nwith windows ending"},
]
BOARD_ROWS = [
    {"board": "b", "body": "random board example one"},
    {"board": "pol", "body": "should not be in the b file"},
    {"board": "b", "body": "random board example two\nand its second line"},
]
BIZ_ROWS = [
    {"text": "coin talk example\nreply example\nanother reply"},
    {"text": ""},
    {"text": "second thread example"},
]
CIVIL_ROWS = [
    {"text": "a mild example comment", "toxicity": 0.2},
    {"text": "a rude example comment at the threshold", "toxicity": 0.5},
    {"text": "a very rude example comment", "toxicity": 0.9},
    {"text": "a comment without a score", "toxicity": None},
    {"text": "", "toxicity": 0.8},
]
STORMFRONT_ROWS = [
    {"text": "an example forum sentence", "user_id": 101, "subforum_id": 7, "num_contexts": 0, "label": 0},
    {"text": "a second example sentence", "user_id": 102, "subforum_id": 7, "num_contexts": 1, "label": 1},
    {"text": "a third example sentence", "user_id": 103, "subforum_id": 8, "num_contexts": 0, "label": 2},
    {"text": "a fourth example sentence", "user_id": 104, "subforum_id": 8, "num_contexts": 2, "label": 3},
    {"text": "a fifth example sentence", "user_id": 105, "subforum_id": 9, "num_contexts": 0,
     "label": "noHate"},
]
TOXIGEN_COLUMNS = ("target_group", "factual?", "ingroup_effect", "lewd", "framing", "predicted_group",
                   "stereotyping", "intent", "toxicity_ai", "toxicity_human", "predicted_author",
                   "actual_method")


def toxigen_row(text: str, score) -> dict:
    row = {"text": text}
    row.update({c: f"{c} value" for c in TOXIGEN_COLUMNS})
    row.update(intent=score, toxicity_ai=score, toxicity_human=score)
    return row


TOXIGEN_ROWS = [toxigen_row("b'a harmless example statement \\xe2\\x80\\x94 with a dash'", 1),
                toxigen_row("a plain example statement", 4.5)]


def rtp_row(i: int, challenging: bool, toxicity) -> dict:
    return {"filename": f"{i:04d}.txt", "begin": i, "end": i + 10, "challenging": challenging,
            "prompt": {"text": f"example prompt {i}", "toxicity": toxicity, "insult": 0.1},
            "continuation": {"text": f"example continuation {i}", "toxicity": 0.1}}


RTP_ROWS = ([rtp_row(i, True, 0.9) for i in range(6)] + [rtp_row(10 + i, False, 0.1) for i in range(6)]
            + [rtp_row(20, False, 0.7), rtp_row(21, False, None)])


# ------------------------------------------------------------------------------------------------ C4
@pytest.mark.parametrize("text", ["one two three four", "nospace", "", "a b", "  lead and trail  ",
                                  "tab\tand\nnewline here"])
def test_split_near_middle_keeps_the_text(text):
    prefix, gold = hub.split_near_middle(text)
    assert prefix + gold == text
    if any(c.isspace() for c in text):
        assert gold[:1].isspace()


def test_c4_writes_snippets_and_clean_corpus_that_read_back(tmp_path):
    counts = hub.write_c4(tmp_path, load=fake(C4_ROWS))
    assert counts == {FILES["c4"][0]: 3, FILES["wikinews"][0]: 5}

    snippets_path = tmp_path / "clean" / "c4_snippets.jsonl"
    with open(snippets_path, "rb") as handle:
        assert handle.read(2) != b"\x1f\x8b"  # plain JSONL, not gzip
    snippets = read_jsonl(snippets_path)
    originals = [r["text"] for r in C4_ROWS["validation"] if r["text"].strip()]
    assert [set(r) for r in snippets] == [{"id", "prefix", "gold_completion"}] * 3
    assert [r["prefix"] + r["gold_completion"] for r in snippets] == originals
    assert [r["id"] for r in snippets] == [0, 1, 2]
    assert read_documents("c4", DataConfig(), tmp_path) == [(str(i), t) for i, t in enumerate(originals)]

    clean = read_jsonl(tmp_path / "clean" / "wikinews_en.jsonl.gz")
    assert [list(r) for r in clean] == [["id", "url", "title", "text"]] * 5
    assert [r["url"] for r in clean] == [r["url"] for r in C4_ROWS["train"]]
    assert {r["title"] for r in clean} == {""}
    docs = read_documents("wikinews", DataConfig(), tmp_path)
    assert docs == [(str(i), r["text"]) for i, r in enumerate(C4_ROWS["train"])]


def test_max_docs_caps_each_file(tmp_path):
    counts = hub.write_c4(tmp_path, max_docs=2, load=fake(C4_ROWS))
    assert set(counts.values()) == {2}
    assert len(read_jsonl(tmp_path / FILES["wikinews"][0])) == 2
    assert hub.write_c4(tmp_path, max_docs=0, load=fake(C4_ROWS)) == dict.fromkeys(counts, 0)
    with pytest.raises(DataError, match="negative"):
        hub.write_c4(tmp_path, max_docs=-1, load=fake(C4_ROWS))


# --------------------------------------------------------------------------------------------- 4chan
def test_pol_lines_are_split_deduplicated_and_read_back(tmp_path):
    assert hub.write_pol(tmp_path, load=fake({"train": POL_ROWS})) == {FILES["pol"][0]: 5}
    expected = ["this is a rude example post", "second line of it", "another rude example post", "a line",
                "with windows ending"]
    assert read_lines(tmp_path / "toxic" / "4chan_pol_lines.txt.gz") == expected + [""]
    docs = read_documents("pol", DataConfig(lines_per_doc=2), tmp_path)
    assert docs == [("pol-0", "\n".join(expected[:2])), ("pol-1", "\n".join(expected[2:4])),
                    ("pol-2", expected[4])]


def test_b_filters_by_board_column(tmp_path):
    hub.write_b(tmp_path, load=fake({"train": BOARD_ROWS}), data_files=None, text_column="body",
                board_column="board", board="b")
    lines = read_lines(tmp_path / "toxic" / "4chan_b_lines.txt.gz")
    assert lines == ["random board example one", "random board example two", "and its second line", ""]
    assert [i for i, _ in read_documents("b", DataConfig(), tmp_path)] == ["b-0"]


def test_biz_threads_read_back(tmp_path):
    assert hub.write_biz(tmp_path, load=fake({"train": BIZ_ROWS})) == {FILES["biz"][0]: 2}
    records = read_jsonl(tmp_path / "toxic" / "4chan_biz_threads.jsonl.gz")
    assert records == [{"board": "biz", "thread": "0", "text": BIZ_ROWS[0]["text"]},
                       {"board": "biz", "thread": "2", "text": BIZ_ROWS[2]["text"]}]
    assert read_documents("biz", DataConfig(), tmp_path) == [("biz-0", BIZ_ROWS[0]["text"]),
                                                            ("biz-2", BIZ_ROWS[2]["text"])]
    rows = [dict(r, thread_no=100 + i) for i, r in enumerate(BIZ_ROWS)]
    hub.write_biz(tmp_path, load=fake({"train": rows}), thread_column="thread_no")
    assert [r["thread"] for r in read_jsonl(tmp_path / FILES["biz"][0])] == ["100", "102"]


# --------------------------------------------------------------------------- Civil Comments, Stormfront
def test_civil_keeps_only_toxic_rows(tmp_path):
    assert hub.write_civil(tmp_path, load=fake({"train": CIVIL_ROWS})) == {FILES["civil"][0]: 2}
    records = read_jsonl(tmp_path / "toxic" / "civil_comments_toxic_spans.jsonl.gz")
    assert records == [{"comment_id": "1", "text": CIVIL_ROWS[1]["text"]},
                       {"comment_id": "2", "text": CIVIL_ROWS[2]["text"]}]
    assert read_documents("civil", DataConfig(), tmp_path) == [("1", CIVIL_ROWS[1]["text"]),
                                                              ("2", CIVIL_ROWS[2]["text"])]


def test_stormfront_format_and_labels(tmp_path):
    hub.write_stormfront(tmp_path, load=fake({"train": STORMFRONT_ROWS}))
    records = read_jsonl(tmp_path / "toxic" / "stormfront_sentences.jsonl.gz")
    assert [list(r) for r in records] == [["file_id", "user_id", "subforum_id", "num_contexts", "label",
                                           "sampled_split", "text"]] * 5
    assert [r["file_id"] for r in records] == [f"{i:08d}" for i in range(5)]
    assert [r["label"] for r in records] == ["noHate", "hate", "idk/skip", "relation", "noHate"]
    assert records[1] == {"file_id": "00000001", "user_id": "102", "subforum_id": "7", "num_contexts": "1",
                          "label": "hate", "sampled_split": "", "text": "a second example sentence"}
    docs = read_documents("stormfront", DataConfig(lines_per_doc=16), tmp_path)
    assert docs == [("sf-0", "\n".join(r["text"] for r in STORMFRONT_ROWS))]


# ------------------------------------------------------------------------------------- probe, prompts
def test_toxigen_annotated_keeps_every_column(tmp_path):
    hub.write_toxigen_annotated(tmp_path, load=fake({"train": TOXIGEN_ROWS}))
    records = read_jsonl(tmp_path / "probe" / "toxigen_annotated.jsonl")
    assert [list(r)[:2] for r in records] == [["idx", "text"]] * 2
    assert all(set(TOXIGEN_COLUMNS) <= set(r) for r in records)
    assert [r["idx"] for r in records] == [0, 1]
    assert records[0]["text"] == "a harmless example statement \u2014 with a dash"
    assert records[1]["text"] == "a plain example statement"
    for record in records:
        for key in ("toxicity_ai", "toxicity_human", "intent"):
            assert type(record[key]) is float
    assert records[0]["framing"] == "framing value"


def test_rtp_subsets_are_deterministic_and_filtered(tmp_path):
    counts = hub.write_rtp(tmp_path, max_docs=4, load=fake({"train": RTP_ROWS}))
    assert counts == {FILES["rtp_toxic"][0]: 4, FILES["rtp_nontoxic"][0]: 4}
    toxic = read_jsonl(tmp_path / "prompts" / "rtp" / "rtp_decodingtrust_toxic.jsonl")
    nontoxic = read_jsonl(tmp_path / "prompts" / "rtp" / "rtp_decodingtrust_nontoxic.jsonl")
    assert all(r["challenging"] is True for r in toxic)
    assert all(r["challenging"] is False and r["prompt"]["toxicity"] < 0.5 for r in nontoxic)
    assert all(r in RTP_ROWS for r in toxic + nontoxic)  # original records, unchanged
    first = [(tmp_path / FILES[n][0]).read_bytes() for n in ("rtp_toxic", "rtp_nontoxic")]
    other = tmp_path / "again"
    hub.write_rtp(other, max_docs=4, load=fake({"train": RTP_ROWS}))
    assert [(other / FILES[n][0]).read_bytes() for n in ("rtp_toxic", "rtp_nontoxic")] == first
    # Without a cap every eligible row is taken (there are fewer than 1,200).
    counts = hub.write_rtp(tmp_path, load=fake({"train": RTP_ROWS}))
    assert list(counts.values()) == [6, 6]


# ------------------------------------------------------------------------------------ atomic, errors
def test_interrupted_write_leaves_no_file(tmp_path):
    with pytest.raises(DataError, match="pip install toxlab"):
        hub.write_civil(tmp_path, load=failing_after(CIVIL_ROWS, ConnectionError("connection reset")))
    folder = tmp_path / "toxic"
    assert list(folder.iterdir()) == []  # neither the final file nor a temporary one

    hub.write_civil(tmp_path, load=fake({"train": CIVIL_ROWS}))
    before = (tmp_path / FILES["civil"][0]).read_bytes()
    with pytest.raises(KeyboardInterrupt):
        hub.write_civil(tmp_path, load=failing_after(CIVIL_ROWS[:3], KeyboardInterrupt()))
    assert (tmp_path / FILES["civil"][0]).read_bytes() == before  # the old file is untouched
    assert [p.name for p in folder.iterdir()] == ["civil_comments_toxic_spans.jsonl.gz"]


def test_network_error_becomes_data_error(tmp_path):
    def offline(split):
        raise TimeoutError("timed out")
    with pytest.raises(DataError, match="needs internet"):
        hub.write_stormfront(tmp_path, load=offline)
    assert not (tmp_path / FILES["stormfront"][0]).exists()


def test_hub_loader_wraps_datasets_failures(monkeypatch, tmp_path):
    datasets = pytest.importorskip("datasets")

    def no_network(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'google/civil_comments' on the Hub (ConnectError)")
    monkeypatch.setattr(datasets, "load_dataset", no_network)
    expected = r"could not load google/civil_comments .*pip install toxlab\[hub\]"
    with pytest.raises(DataError, match=expected) as e:
        hub.write_civil(tmp_path)
    assert "\n" not in str(e.value)
    assert not (tmp_path / FILES["civil"][0]).exists()


def test_missing_datasets_package_becomes_data_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(DataError, match=r"pip install toxlab\[hub\]"):
        hub.write_rtp(tmp_path)


def test_script_dataset_falls_back_to_the_parquet_export(monkeypatch):
    datasets = pytest.importorskip("datasets")
    calls = []

    def load_dataset(path, *args, **kwargs):
        calls.append((path, kwargs))
        if path != "parquet":
            raise RuntimeError("Dataset scripts are no longer supported, but found hate_speech18.py")
        return iter(STORMFRONT_ROWS)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    rows = list(hub._hub("odegiber/hate_speech18")("train"))
    assert rows == STORMFRONT_ROWS
    assert calls[1][1]["data_files"] == {
        "train": "hf://datasets/odegiber/hate_speech18@refs%2Fconvert%2Fparquet/default/train/*.parquet"}


# ---------------------------------------------------------------------------------------- everything
def all_loaders() -> dict:
    return {"c4": fake(C4_ROWS), "civil": fake({"train": CIVIL_ROWS}),
            "stormfront": fake({"train": STORMFRONT_ROWS}),
            "toxigen_annotated": fake({"train": TOXIGEN_ROWS}),
            "rtp": fake({"train": RTP_ROWS}), "pol": fake({"train": POL_ROWS}),
            "b": fake({"train": POL_ROWS}), "biz": fake({"train": BIZ_ROWS})}


def test_download_all_writes_a_readable_layout(tmp_path, capsys):
    root = hub.download_all(tmp_path / "data", loaders=all_loaders())
    assert root == (tmp_path / "data").resolve()
    assert check_layout(PRETRAIN_SOURCES, root) == root
    for name in PRETRAIN_SOURCES:
        assert read_documents(name, DataConfig(), root)
    note = (root / hub.NOTE_NAME).read_text()
    for where in ("microsoft/TOXIGEN", "t-davidson/hate-speech-and-offensive-language",
                  FILES["toxigen_prompt_sentences"][0], FILES["davidson"][0], "prompts/toxigen/"):
        assert where in note
    out = capsys.readouterr()
    assert "records" in out.err
    assert "example" not in out.out + out.err  # counts only, never text


def test_download_all_records_a_missing_4chan_source(tmp_path):
    loaders = all_loaders()
    loaders["b"] = failing_after([], ConnectionError("no such dataset"))
    root = hub.download_all(tmp_path, max_docs=2, loaders=loaders)
    assert not (root / FILES["b"][0]).exists()
    assert FILES["b"][0] in (root / hub.NOTE_NAME).read_text()
    assert len(read_jsonl(root / FILES["civil"][0])) == 2

    loaders["civil"] = failing_after([], ConnectionError("offline"))
    with pytest.raises(DataError, match="needs internet"):
        hub.download_all(tmp_path / "other", loaders=loaders)


def test_cli_download_uses_the_default_hub_datasets(monkeypatch, tmp_path, capsys):
    by_dataset = {"allenai/c4": C4_ROWS["train"], "google/civil_comments": CIVIL_ROWS,
                  "odegiber/hate_speech18": STORMFRONT_ROWS, "toxigen/toxigen-data": TOXIGEN_ROWS,
                  "allenai/real-toxicity-prompts": RTP_ROWS, hub.POL_DATASET: POL_ROWS,
                  hub.CHAN_DATASET: BIZ_ROWS}
    asked = []

    def fake_hub(name, config=None, *, streaming=False, **kwargs):
        asked.append((name, config, kwargs.get("data_files")))
        return lambda split: iter(C4_ROWS["validation"] if split == "validation" else by_dataset[name])
    monkeypatch.setattr(hub, "_hub", fake_hub)
    assert cli.main(["data", "download", "--to", str(tmp_path), "--max-docs", "3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path.resolve())
    assert ("allenai/c4", "en", None) in asked and ("toxigen/toxigen-data", "annotated", None) in asked
    assert (hub.CHAN_DATASET, None, "biz/*.txt") in asked
    assert check_layout(PRETRAIN_SOURCES, tmp_path)
