"""toxlab.data.hub writers, offline: hand-written harmless rows go through injected loaders (never the network),
and the files they write must be read back by toxlab.data.corpora."""

from __future__ import annotations

import gzip
import json
import sys

import pytest

from toxlab import cli
from toxlab.core.config import DataConfig, get_preset
from toxlab.core.errors import DataError
from toxlab.data import hub
from toxlab.data.corpora import FILES, PRETRAIN_SOURCES, check_layout, files_read, read_documents
from toxlab.judges.corpus import read_source

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


BLOG_PROFILE_A = {"date": "01,May,2004", "gender": "female", "age": 23, "horoscope": "Leo", "job": "Student"}
BLOG_PROFILE_B = {"date": "02,May,2004", "gender": "male", "age": 35, "horoscope": "Aries", "job": "Engineering"}
BLOG_ROWS = [
    dict(BLOG_PROFILE_A, text="  A calm   example blog post about   baking bread at home.  "),
    dict(BLOG_PROFILE_A, text="A second example post by the same blogger, about a walk &amp; a picnic."),
    dict(BLOG_PROFILE_A, text="too short"),  # under 20 characters: dropped
    dict(BLOG_PROFILE_B, text="A first example post by another blogger, about gardening tips."),
]
BLOG_TEXTS = ["A calm example blog post about baking bread at home.",
              "A second example post by the same blogger, about a walk & a picnic.",
              "A first example post by another blogger, about gardening tips."]
MARCH_2 = 1425254400  # 2015-03-02 00:00 UTC


def reddit_row(subreddit: str, body, created) -> dict:
    return {"body": body, "subreddit_name_prefixed": f"r/{subreddit}", "created_utc": created, "score": "3"}


REDDIT_ROWS = {
    "books": [reddit_row("books", "A kind example comment about a novel.", str(MARCH_2)),
              reddit_row("books", "[deleted]", str(MARCH_2)),
              reddit_row("books", "Another example comment &amp; a reply.", f"{MARCH_2 + 86400}.0"),
              reddit_row("books", "A kind example comment about a novel.", str(MARCH_2)),  # duplicate: dropped
              reddit_row("books", "  ", str(MARCH_2)),
              reddit_row("books", "A third example comment on the same day.", str(MARCH_2 + 60))],
    "gadgets": [reddit_row("gadgets", "An example comment about a phone.", MARCH_2),
                reddit_row("gadgets", "An example comment about a laptop.", None)],
}
POL25_ROWS = ([{"text": "first example post<br>with a second line &amp; more"},
               {"text": '<a href="#p1" class="quotelink">&gt;&gt;123</a><br>an example reply'},
               {"text": "  "},
               {"text": None},
               {"text": "a < b > c example"}]
              + [{"text": f"example post number {i}"} for i in range(20)])
WEBTEXT_ROWS = [{"text": "word " * 100}, {"text": ""},
                {"text": "A short example web page.\n\nWith two   paragraphs."}, {"text": "x" * 300}]


def jigsaw_row(label, text: str) -> dict:
    return {"id": f"{abs(hash(text)) % 10**8:08x}", "comment_text": text, "label": label}


JIGSAW_ROWS = [jigsaw_row(0, "placeholder comment, not toxic, 0"), jigsaw_row(1, "placeholder comment, toxic, 1"),
               jigsaw_row(0, "placeholder comment, not toxic, 2"), jigsaw_row(0, "   "),
               jigsaw_row(0, "placeholder comment, not toxic, 4"), jigsaw_row(1, "placeholder comment, toxic, 5"),
               jigsaw_row(0, "placeholder comment, not toxic, 6"), jigsaw_row(1, "placeholder comment, toxic, 7"),
               jigsaw_row(0, "placeholder comment, not toxic, 8")]


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


def test_pol_2025_posts_are_cleaned_grouped_and_read_back(tmp_path):
    assert hub.write_pol_2025(tmp_path, load=fake({"train": POL25_ROWS})) == {FILES["pol_2025"][0]: 23}
    records = read_jsonl(tmp_path / "toxic" / "4chan_pol_posts_2025.jsonl.gz")
    assert [list(r) for r in records] == [["post_id", "thread", "time", "country", "file", "text"]] * 23
    assert [r["text"] for r in records[:3]] == ["first example post\nwith a second line & more",
                                                ">>123\nan example reply", "a < b > c example"]
    assert [r["post_id"] for r in records[:4]] == ["0", "1", "4", "5"]  # row positions; empty posts dropped
    assert [r["thread"] for r in records] == ["block-0"] * 16 + ["block-1"] * 7
    assert {(r["time"], r["country"], r["file"]) for r in records} == {("", "", f"{hub.POL_DATASET}/"
                                                                                 f"{hub.POL_2025_FILES}")}
    docs = read_documents("pol_2025", DataConfig(), tmp_path)
    assert [i for i, _ in docs] == ["pol25-block-0-0", "pol25-block-1-0"]
    assert docs[0][1].split("\n")[:4] == ["first example post", "with a second line & more", "an example reply",
                                           "a < b > c example"]  # the reader drops quote references
    assert docs[1][1] == "\n".join(f"example post number {i}" for i in range(13, 20))


def test_pol_2025_takes_thread_and_metadata_columns(tmp_path):
    rows = [{"no": 10 + i, "resto": 7 if i < 2 else 9, "now": f"2019-01-0{i + 1}", "flag": "XX",
             "com": f"example post {i}"} for i in range(3)]
    hub.write_pol_2025(tmp_path, load=fake({"train": rows}), data_files=None, text_column="com",
                       thread_column="resto", id_column="no", time_column="now", country_column="flag")
    records = read_jsonl(tmp_path / FILES["pol_2025"][0])
    assert [(r["post_id"], r["thread"], r["time"], r["country"], r["file"]) for r in records] == [
        ("10", "7", "2019-01-01", "XX", hub.POL_DATASET), ("11", "7", "2019-01-02", "XX", hub.POL_DATASET),
        ("12", "9", "2019-01-03", "XX", hub.POL_DATASET)]
    docs = read_documents("pol_2025", DataConfig(), tmp_path)
    assert docs == [("pol25-7-0", "example post 0\nexample post 1"), ("pol25-9-0", "example post 2")]
    capped = hub.write_pol_2025(tmp_path, max_docs=2, load=fake({"train": rows}), text_column="com")
    assert capped == {FILES["pol_2025"][0]: 2}


# ------------------------------------------------------------------------------------------ web text
def test_blogs_find_bloggers_by_profile_and_read_back(tmp_path):
    assert hub.write_blogs(tmp_path, load=fake({"train": BLOG_ROWS})) == {FILES["blogs"][0]: 3}
    records = read_jsonl(tmp_path / "clean" / "blogs_2004.jsonl.gz")
    assert records == [{"blogger": "0", "topic": "Student", "text": BLOG_TEXTS[0]},
                       {"blogger": "0", "topic": "Student", "text": BLOG_TEXTS[1]},
                       {"blogger": "1", "topic": "Engineering", "text": BLOG_TEXTS[2]}]
    docs = read_documents("blogs", DataConfig(), tmp_path)
    assert docs == [("blog-0-0", BLOG_TEXTS[0]), ("blog-0-1", BLOG_TEXTS[1]), ("blog-1-0", BLOG_TEXTS[2])]
    rows = [dict(r, author=f"id{i % 2}") for i, r in enumerate(BLOG_ROWS)]
    hub.write_blogs(tmp_path, max_docs=2, load=fake({"train": rows}), blogger_column="author", topic_column=None)
    assert [(r["blogger"], r["topic"]) for r in read_jsonl(tmp_path / FILES["blogs"][0])] == [("id0", ""),
                                                                                             ("id1", "")]


def test_reddit_comments_are_keyed_by_subreddit_day_and_read_back(tmp_path):
    counts = hub.write_reddit(tmp_path, load=fake(REDDIT_ROWS), splits=("books", "gadgets"))
    assert counts == {FILES["reddit"][0]: 5}
    records = read_jsonl(tmp_path / "clean" / "reddit_2015.jsonl.gz")
    assert records == [
        {"file": "books_2015-03-02", "field": "answer", "text": "A kind example comment about a novel."},
        {"file": "books_2015-03-03", "field": "answer", "text": "Another example comment & a reply."},
        {"file": "books_2015-03-02", "field": "answer", "text": "A third example comment on the same day."},
        {"file": "gadgets_2015-03-02", "field": "answer", "text": "An example comment about a phone."},
        {"file": "gadgets", "field": "answer", "text": "An example comment about a laptop."}]
    docs = read_documents("reddit", DataConfig(), tmp_path)
    assert docs == [("reddit-books_2015-03-02-0", f"{records[0]['text']}\n{records[2]['text']}"),
                    ("reddit-books_2015-03-03-0", records[1]["text"]),
                    ("reddit-gadgets_2015-03-02-0", records[3]["text"]), ("reddit-gadgets-0", records[4]["text"])]


def test_reddit_shares_the_cap_between_splits_and_falls_back_to_blocks(tmp_path):
    hub.write_reddit(tmp_path, max_docs=3, load=fake(REDDIT_ROWS), splits=("books", "gadgets"))
    assert [r["file"] for r in read_jsonl(tmp_path / FILES["reddit"][0])] == [
        "books_2015-03-02", "books_2015-03-03", "gadgets_2015-03-02"]
    rows = [{"body": f"example comment {i}"} for i in range(20)]
    hub.write_reddit(tmp_path, load=fake({"train": rows}), splits=("train",), subreddit_column=None,
                     time_column=None)
    files = [r["file"] for r in read_jsonl(tmp_path / FILES["reddit"][0])]
    assert files == ["block-0"] * hub.REDDIT_BLOCK + ["block-1"] * (20 - hub.REDDIT_BLOCK)
    with pytest.raises(DataError, match="at least one split"):
        hub.write_reddit(tmp_path, load=fake({}), splits=())


def test_webtext_excerpts_read_back(tmp_path):
    assert hub.write_webtext(tmp_path, load=fake({"train": WEBTEXT_ROWS})) == {FILES["webtext"][0]: 3}
    records = read_jsonl(tmp_path / "clean" / "webtext_excerpts.jsonl.gz")
    assert [(r["file"], r["line"]) for r in records] == [("openwebtext-10k.train", i) for i in (0, 2, 3)]
    assert records[0]["text"] == " ".join(["word"] * 56)  # cut at the last space within 280 characters
    assert records[1]["text"] == "A short example web page. With two paragraphs."
    assert records[2]["text"] == "x" * hub.WEBTEXT_CHARS
    docs = read_documents("webtext", DataConfig(), tmp_path)
    assert docs == [(f"webtext-{i}", r["text"]) for i, r in enumerate(records)]


@pytest.mark.parametrize("text", ["", "one", "two words", "a " * 200, "long" * 100 + " tail", " lead  and\ntrail "])
def test_excerpt_is_a_prefix_of_the_collapsed_text(text):
    out = hub.excerpt(text)
    collapsed = " ".join(text.split())
    assert collapsed.startswith(out) and len(out) <= hub.WEBTEXT_CHARS
    assert out == collapsed or len(out) > hub.WEBTEXT_CHARS // 2


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


def test_jigsaw_is_balanced_deterministic_and_read_back(tmp_path):
    assert hub.write_jigsaw(tmp_path, load=fake({"test": JIGSAW_ROWS})) == {FILES["jigsaw"][0]: 6}
    path = tmp_path / "judge" / "jigsaw_talk_balanced.jsonl.gz"
    records = read_jsonl(path)
    assert [list(r) for r in records] == [["id", "label", "text"]] * 6
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)  # file order
    assert sorted(r["label"] for r in records) == [0, 0, 0, 1, 1, 1]
    assert all(JIGSAW_ROWS[r["id"]]["comment_text"] == r["text"] and JIGSAW_ROWS[r["id"]]["label"] == r["label"]
               for r in records)
    assert read_source("jigsaw", tmp_path) == [(r["text"], r["label"]) for r in records]
    before = path.read_bytes()
    hub.write_jigsaw(tmp_path, load=fake({"test": JIGSAW_ROWS}))
    assert path.read_bytes() == before
    hub.write_jigsaw(tmp_path, max_docs=4, load=fake({"test": JIGSAW_ROWS}))
    assert sorted(r["label"] for r in read_jsonl(path)) == [0, 0, 1, 1]


def test_jigsaw_rejects_a_non_binary_label(tmp_path):
    rows = [dict(JIGSAW_ROWS[0], label="severe")]
    with pytest.raises(DataError, match="not 0 or 1"):
        hub.write_jigsaw(tmp_path, load=fake({"test": rows}))
    assert not (tmp_path / FILES["jigsaw"][0]).exists()


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
            "b": fake({"train": POL_ROWS}), "biz": fake({"train": BIZ_ROWS}),
            "blogs": fake({"train": BLOG_ROWS}),
            "reddit": fake({split: REDDIT_ROWS.get(split, []) for split in hub.REDDIT_SPLITS}),
            "webtext": fake({"train": WEBTEXT_ROWS}), "pol_2025": fake({"train": POL25_ROWS}),
            "jigsaw": fake({"test": JIGSAW_ROWS})}


def hub_files(names: tuple[str, ...]) -> tuple[str, ...]:
    """`names` less the files the hub cannot provide (MISSING_FROM_HUB.md says where to get them)."""
    return tuple(n for n in names if n not in hub.NOT_ON_HUB)


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
    assert set(hub.WRITERS) >= {"blogs", "reddit", "webtext", "pol_2025", "jigsaw"}
    assert not any(n.startswith(".") for n in (p.name for p in root.rglob("*")))  # no temporary file left


def test_download_all_writes_the_web_text_design_but_its_word_list(tmp_path):
    root = hub.download_all(tmp_path, loaders=all_loaders())
    smoke = files_read(get_preset("smoke").data)
    assert "ldnoobw" in smoke and hub_files(smoke) == tuple(n for n in smoke if n != "ldnoobw")
    assert check_layout(hub_files(smoke), root) == root
    with pytest.raises(DataError, match=FILES["ldnoobw"][0]):
        check_layout(smoke, root)
    for name in ("blogs", "reddit", "webtext", "pol_2025"):
        assert read_documents(name, DataConfig(), root)
    assert len(read_source("jigsaw", root)) == 6
    note = (root / hub.NOTE_NAME).read_text()
    assert f"`{FILES['ldnoobw'][0]}`" in note
    assert "https://github.com/LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words" in note
    assert "file `en`" in note and "data.clean_filter=none" in note


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


@pytest.mark.parametrize("name", ["blogs", "reddit", "webtext", "pol_2025", "jigsaw"])
def test_download_all_records_a_missing_second_batch_source(tmp_path, capsys, name):
    loaders = all_loaders()
    loaders[name] = failing_after([], ConnectionError("no such dataset"))
    root = hub.download_all(tmp_path, loaders=loaders)
    assert not (root / FILES[name][0]).exists()
    note = (root / hub.NOTE_NAME).read_text()
    assert f"`{FILES[name][0]}`: the default hub dataset could not be read" in note
    assert f"write_{name}(DIR" in note
    others = [n for n in ("blogs", "reddit", "webtext", "pol_2025", "jigsaw", "pol", "civil") if n != name]
    assert all((root / FILES[n][0]).is_file() for n in others)
    assert f"{FILES[name][0]}: not written" in capsys.readouterr().err


def test_download_all_records_a_best_effort_source_whose_columns_changed(tmp_path):
    loaders = all_loaders()
    loaders["blogs"] = fake({"train": [{"content": "an example post with another column name"}]})
    root = hub.download_all(tmp_path, loaders=loaders)
    assert not (root / FILES["blogs"][0]).exists()
    assert "has no column 'text'" in (root / hub.NOTE_NAME).read_text()
    loaders["civil"] = fake({"train": [{"content": "an example comment", "toxicity": 0.9}]})
    with pytest.raises(KeyError):  # a source the hub does hold fails loudly
        hub.download_all(tmp_path / "other", loaders=loaders)


def test_cli_download_uses_the_default_hub_datasets(monkeypatch, tmp_path, capsys):
    by_dataset = {"allenai/c4": C4_ROWS["train"], "google/civil_comments": CIVIL_ROWS,
                  "odegiber/hate_speech18": STORMFRONT_ROWS, "toxigen/toxigen-data": TOXIGEN_ROWS,
                  "allenai/real-toxicity-prompts": RTP_ROWS, hub.POL_DATASET: POL_ROWS,
                  hub.CHAN_DATASET: BIZ_ROWS, hub.BLOGS_DATASET: BLOG_ROWS,
                  hub.REDDIT_DATASET: REDDIT_ROWS["books"], hub.WEBTEXT_DATASET: WEBTEXT_ROWS,
                  hub.JIGSAW_DATASET: JIGSAW_ROWS}
    asked = []

    def fake_hub(name, config=None, *, streaming=False, **kwargs):
        asked.append((name, config, kwargs.get("data_files")))
        return lambda split: iter(C4_ROWS["validation"] if split == "validation" else by_dataset[name])
    monkeypatch.setattr(hub, "_hub", fake_hub)
    assert cli.main(["data", "download", "--to", str(tmp_path), "--max-docs", "3"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(tmp_path.resolve())
    assert ("allenai/c4", "en", None) in asked and ("toxigen/toxigen-data", "annotated", None) in asked
    assert (hub.CHAN_DATASET, None, "biz/*.txt") in asked
    # /pol/ 2025 reads another shard of the /pol/ dump than /pol/ 2018, so they share no post.
    assert (hub.POL_DATASET, None, None) in asked and (hub.POL_DATASET, None, hub.POL_2025_FILES) in asked
    assert (hub.BLOGS_DATASET, hub.BLOGS_CONFIG, None) in asked
    assert (hub.WEBTEXT_DATASET, hub.WEBTEXT_CONFIG, None) in asked
    assert {(hub.REDDIT_DATASET, None, None), (hub.JIGSAW_DATASET, None, None)} <= set(asked)
    assert check_layout(PRETRAIN_SOURCES, tmp_path)
    assert check_layout(hub_files(files_read(get_preset("smoke").data)), tmp_path)
    assert FILES["ldnoobw"][0] in (tmp_path / hub.NOTE_NAME).read_text()
