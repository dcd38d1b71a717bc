"""Loaders of the paper's public sources from the Hugging Face hub, for users who have internet.

Each `write_*` function streams one source and writes it in exactly the on-disk layout that
`toxlab.data.corpora` reads (see `toxlab.data.corpora.FILES`); `download_all` runs them all into one folder and is what
`toxlab data download --to DIR` calls. Tests and offline users pass their own `load(split)` callable
(returning dict rows) in place of the default, which calls `datasets.load_dataset`.

Differences from the staged `shared/data` folder, on purpose:
- Clean corpus: the Wikinews dump is not on the hub. Online users get C4 (`allenai/c4`, `en`, train,
  streamed) written under the same name and format, `clean/wikinews_en.jsonl.gz` (fields
  `id, url, title, text`, title empty). The paper itself trained on C4, so this is closer to it.
- C4 snippets: the held-out set is cut from C4 `validation`, so it never overlaps the C4 training text.
- 4chan: the hub has no canonical copy. /pol/ defaults to `kjj0/4chanpol` (the deduplicated posts of
  Papasavva et al. 2020, "Raiders of the Lost Kek"); /b/ and /biz/ default to the board folders of
  `lesserfield/4chan-datasets`. All three take `dataset=`, `data_files=`, `text_column=` and an optional
  board filter, and `download_all` records a 4chan source it could not fetch instead of failing.
- Blogs: the Blog Authorship Corpus (Schler et al. 2006) is on the hub as `barilan/blog_authorship_corpus`
  (its Parquet export: one row a post with `text, date, gender, age, horoscope, job`), without blogger ids. A
  blogger is therefore a run of consecutive rows with the same profile (gender, age, industry, sign; the rows come
  blogger by blogger), numbered from 0; `topic` is the industry (`job`). The first 110,000 posts of train are
  taken in file order, not whole bloggers in a pseudo-random order; posts are cleaned as staged (runs of spaces
  collapsed, entities unescaped, posts under 20 characters dropped).
- Reddit: the staged Feb-Apr 2015 files are not on the hub. `HuggingFaceGECLM/REDDIT_comments` (Pushshift comments,
  one split per subreddit) stands in: the first comments of six subreddits (`REDDIT_SPLITS`) in equal shares,
  de-duplicated on their text, `[deleted]` and `[removed]` dropped, entities unescaped. `file` is
  `<subreddit>_<UTC date>` as staged; every row is a reply, so `field` is always `answer` (the staged `question`
  rows are thread titles, which a comment dump does not hold).
- Web-text excerpts: instead of the AdversarialDecoder WebText and Pile excerpts, the first 280 characters (cut at
  a space, whitespace collapsed) of each of the 10,000 OpenWebText documents of `stas/openwebtext-10k` (the open
  replica of GPT-2's WebText); `file` is `openwebtext-10k.train`, `line` the document's row.
- /pol/ 2025-26: no scrape that recent is on the hub. `pol_2025` is written from the same Papasavva et al. /pol/
  dump as `pol` (`kjj0/4chanpol`, 2016-2019), from its last Parquet shard, so that it shares no post with the
  `pol` lines streamed from the start of the first shard (both are in the web-text design's toxic recipe). The dump
  keeps only the text: posts are grouped into synthetic threads of 16 consecutive posts (`block-<n>`, one
  document at the default `lines_per_doc`), `post_id` is the row's position, `time` and `country` are empty;
  HTML is stripped as staged (`<br>` to newlines, other tags removed, entities unescaped).
- Jigsaw: the balanced talk-page set is drawn from `OxAISH-AL-LLM/wiki_toxic` (the Jigsaw Toxic Comment
  Classification data, CC0, binary `label`), split `test`: every toxic comment and as many non-toxic ones (a
  seeded draw), in file order, `id` the row's position in that split.
- ToxiGen prompt sentences, the ToxiGen prompt files, the Davidson judge data and C4's word list (LDNOOBW) live
  on GitHub, not the hub: `download_all` writes `MISSING_FROM_HUB.md` saying where to get them.

Every file is written to a temporary file in its own folder and then renamed, so an interrupted download
never leaves a half-written file under a name toxlab reads. Nothing here prints corpus text: only counts.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import html
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

import numpy as np

from toxlab.core.errors import DataError
from toxlab.data.corpora import FILES

#: A loader: split name -> iterable of dict rows (the default wraps `datasets.load_dataset`).
Loader = Callable[[str], Iterable[Mapping]]

NEEDS = "needs internet and `pip install toxlab[hub]`"
#: Records written per source when `max_docs` is None (None = the whole source). C4 and /pol/ are far
#: larger than any preset needs (the gpu preset trains on 8 M clean tokens), so they are capped.
#: The second batch is sized like the staged files (posts, comments, posts, excerpts; Jigsaw is balanced whole).
DEFAULT_LIMITS: dict[str, int | None] = {
    "wikinews": 40_000, "c4": 1_500, "pol": 200_000, "b": 50_000, "biz": 25_000,
    "civil": None, "stormfront": None, "toxigen_annotated": None,
    "blogs": 110_000, "reddit": 400_000, "pol_2025": 280_000, "webtext": 10_000, "jigsaw": None,
}
RTP_PER_FILE = 1_200  # the size of each DecodingTrust RealToxicityPrompts subset
RTP_SEED = 0
CIVIL_THRESHOLD = 0.5
STORMFRONT_LABELS = ("noHate", "hate", "idk/skip", "relation")  # ClassLabel order of hate_speech18
TOXIGEN_FLOATS = ("toxicity_ai", "toxicity_human", "intent")

POL_DATASET = "kjj0/4chanpol"
CHAN_DATASET = "lesserfield/4chan-datasets"
#: The last of the /pol/ dump's 35 Parquet shards: `pol_2025` reads it, `pol` streams from the first, so the two
#: toxic sources of the default recipe never share a post.
POL_2025_FILES = "data/train-00034-of-00035-*.parquet"
POL_2025_THREAD_POSTS = 16  # posts to a synthetic thread when the dataset has no thread column
BLOGS_DATASET = "barilan/blog_authorship_corpus"
BLOGS_CONFIG = "blog_authorship_corpus"  # the config name of its Parquet export
BLOG_PROFILE = ("gender", "age", "job", "horoscope")  # a change between consecutive rows starts a new blogger
BLOG_MIN_CHARS = 20
REDDIT_DATASET = "HuggingFaceGECLM/REDDIT_comments"
#: Subreddits of REDDIT_DATASET (one split each) read in equal shares: topics of the staged 2015 files.
REDDIT_SPLITS = ("books", "gadgets", "programming", "science", "Games", "AskHistorians")
REDDIT_GONE = ("[deleted]", "[removed]")
REDDIT_BLOCK = 16  # comments to a synthetic `file` when a row names no subreddit
WEBTEXT_DATASET = "stas/openwebtext-10k"
WEBTEXT_CONFIG = "plain_text"
WEBTEXT_CHARS = 280
JIGSAW_DATASET = "OxAISH-AL-LLM/wiki_toxic"
JIGSAW_SEED = 0

#: Files the hub does not hold, with where to get them (written to MISSING_FROM_HUB.md).
NOT_ON_HUB: dict[str, str] = {
    "toxigen_prompt_sentences": (
        "microsoft/TOXIGEN on GitHub, folder `prompts/` (`{hate,neutral}_<group>_1k.txt`): split each line "
        "on the literal `\\n-` separator, de-duplicate per (sentence, label, group), and write JSONL with "
        "fields `text, label (hate/neutral), target_group`"),
    "toxigen_prompts": (
        "microsoft/TOXIGEN on GitHub, folder `prompts/`: gzip each `{hate,neutral}_<group>_1k.txt` unchanged "
        "into `prompts/toxigen/`"),
    "davidson": ("t-davidson/hate-speech-and-offensive-language on GitHub, `data/labeled_data.csv`, "
                 "copied unchanged"),
    "ldnoobw": ("LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words on GitHub "
                "(https://github.com/LDNOOBW/List-of-Dirty-Naughty-Obscene-and-Otherwise-Bad-Words, file `en`; "
                "the staged copy is of commit 5faf2ba42d7b1c0977169ec3611df25a3c08eb13), copied unchanged. C4 "
                "filtered its pages with this list, and so does every preset with `data.clean_filter=c4` (the "
                "web-text design); without the file, run with `--set data.clean_filter=none`. It holds offensive "
                "words: do not print it"),
}
NOT_ON_HUB_FILES = {"toxigen_prompts": "prompts/toxigen/{hate,neutral}_<group>_1k.txt.gz"}


# ------------------------------------------------------------------------------------------- loading
def _first_line(exc: BaseException) -> str:
    # Library errors can span many lines; the CLI shows errors on one line.
    return (str(exc).splitlines() or [""])[0][:160]


def _hub(name: str, config: str | None = None, *, streaming: bool = False, **kwargs) -> Loader:
    """A loader that reads one split of a hub dataset; any failure becomes a one-line DataError."""

    def load(split: str) -> Iterator[Mapping]:
        try:
            import datasets
        except ImportError:
            raise DataError(f"toxlab.data.hub {NEEDS}") from None
        try:
            try:
                rows = datasets.load_dataset(name, config, split=split, streaming=streaming, **kwargs)
            except RuntimeError as exc:
                # datasets >= 4 refuses repos that still hold a loading script; the hub's automatic
                # Parquet export of the same data loads without it.
                if "scripts are no longer supported" not in str(exc):
                    raise
                export = (f"hf://datasets/{name}@refs%2Fconvert%2Fparquet/"
                          f"{config or 'default'}/{split}/*.parquet")
                rows = datasets.load_dataset("parquet", data_files={split: export}, split=split,
                                             streaming=streaming)
            yield from rows
        except DataError:
            raise
        except Exception as exc:  # a thin wrapper round a network call: every failure means "could not load"
            raise DataError(f"could not load {name} ({split}) from the Hugging Face hub: "
                            f"{type(exc).__name__}: {_first_line(exc)}; this {NEEDS} (gated datasets such as "
                            f"ToxiGen also need their terms accepted and `huggingface-cli login`)") from exc

    return load


def _rows(load: Loader, split: str, what: str) -> Iterator[Mapping]:
    """Rows of `load(split)`, with network-level errors of a custom loader turned into DataError."""
    try:
        yield from load(split)
    except OSError as exc:  # ConnectionError, TimeoutError and requests' errors are all OSErrors
        raise DataError(f"could not read {what} ({type(exc).__name__}: {_first_line(exc)}); "
                        f"this {NEEDS}") from exc


def _limit(name: str, max_docs: int | None) -> int | None:
    if max_docs is not None and max_docs < 0:
        raise DataError(f"max_docs={max_docs} is negative; pass a count >= 0, or None for the default")
    return DEFAULT_LIMITS.get(name) if max_docs is None else max_docs


# ------------------------------------------------------------------------------------------- writing
@contextmanager
def _atomic(path: Path) -> Iterator[IO[str]]:
    """A text handle on a temporary file beside `path`, gzip-compressed if `path` ends in .gz; renamed
    onto `path` only if the block finishes, and removed if it raises."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as raw:
            # mtime=0 and no file name in the gzip header: the same rows give byte-identical files.
            packed = (gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0)
                      if path.suffix == ".gz" else None)
            with io.TextIOWrapper(packed or raw, encoding="utf-8", newline="\n") as text:
                yield text
                text.flush()
                if packed is not None:
                    packed.close()  # writes the gzip trailer; closing the wrapper then leaves raw open
                raw.flush()
                os.fsync(raw.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it a normal file's mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_jsonl(path: Path, records: Iterable[Mapping]) -> int:
    n = 0
    with _atomic(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    n = 0
    with _atomic(path) as handle:
        for line in lines:
            handle.write(line + "\n")
            n += 1
    return n


def _take(items: Iterable, limit: int | None) -> Iterator:
    if limit == 0:
        return
    for n, item in enumerate(items, 1):
        yield item
        if limit is not None and n >= limit:
            return


def _path(root: Path, name: str) -> Path:
    return Path(root) / FILES[name][0]


# ------------------------------------------------------------------------------------------------ C4
def split_near_middle(text: str) -> tuple[str, str]:
    """(prefix, gold_completion) cut at the whitespace nearest the middle (the middle if none); the
    completion starts with that whitespace, and prefix + gold_completion == text."""
    middle = len(text) // 2
    cut = min((m.start() for m in re.finditer(r"\s", text)), key=lambda i: abs(i - middle), default=middle)
    return text[:cut], text[cut:]


def write_c4(root: str | Path, max_docs: int | None = None, load: Loader | None = None) -> dict[str, int]:
    """C4 `validation` -> clean/c4_snippets.jsonl and C4 `train` -> clean/wikinews_en.jsonl.gz."""
    load = load or _hub("allenai/c4", "en", streaming=True)
    texts = (r["text"] for r in _rows(load, "validation", "C4") if (r["text"] or "").strip())
    snippets = ({"id": i, "prefix": prefix, "gold_completion": gold}
                for i, (prefix, gold) in enumerate(map(split_near_middle, texts)))
    counts = {FILES["c4"][0]: _write_jsonl(_path(root, "c4"), _take(snippets, _limit("c4", max_docs)))}
    # The train stream stands in for Wikinews (see the module docstring); ids are stream positions.
    docs = ({"id": str(i), "url": r.get("url", ""), "title": "", "text": r["text"]}
            for i, r in enumerate(_rows(load, "train", "C4")))
    counts[FILES["wikinews"][0]] = _write_jsonl(_path(root, "wikinews"),
                                                _take(docs, _limit("wikinews", max_docs)))
    return counts


# --------------------------------------------------------------------------------------------- 4chan
def _board_rows(rows: Iterable[Mapping], board_column: str | None, board: str | None) -> Iterator[Mapping]:
    if board_column is None:
        yield from rows
    else:
        yield from (r for r in rows if str(r[board_column]) == board)


def _post_lines(rows: Iterable[Mapping], text_column: str) -> Iterator[str]:
    # splitlines also splits on the rarer separators (\r, \x1c, \u2028, ...), so no written line can
    # later be read back as two lines.
    seen: set[str] = set()
    for row in rows:
        for line in (row[text_column] or "").splitlines():
            if line.strip() and line not in seen:
                seen.add(line)
                yield line


def _write_board_lines(name: str, root: str | Path, max_docs: int | None, load: Loader | None,
                       dataset: str, data_files: str | None, text_column: str,
                       board_column: str | None, board: str | None) -> dict[str, int]:
    load = load or _hub(dataset, streaming=True, data_files=data_files)
    rows = _board_rows(_rows(load, "train", f"4chan /{name}/ ({dataset})"), board_column, board)
    lines = _take(_post_lines(rows, text_column), _limit(name, max_docs))
    return {FILES[name][0]: _write_lines(_path(root, name), lines)}


def write_pol(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
              dataset: str = POL_DATASET, data_files: str | None = None, text_column: str = "text",
              board_column: str | None = None, board: str | None = "pol") -> dict[str, int]:
    """4chan /pol/ posts -> toxic/4chan_pol_lines.txt.gz: one non-empty post line a line, de-duplicated
    in first-seen order. `board_column` keeps only rows whose value there equals `board`."""
    return _write_board_lines("pol", root, max_docs, load, dataset, data_files, text_column, board_column,
                              board)


def write_b(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
            dataset: str = CHAN_DATASET, data_files: str | None = "b/*.txt", text_column: str = "text",
            board_column: str | None = None, board: str | None = "b") -> dict[str, int]:
    """4chan /b/ posts -> toxic/4chan_b_lines.txt.gz, in the /pol/ format. For a multi-board dataset,
    set `data_files=None` and `board_column` to its board column."""
    return _write_board_lines("b", root, max_docs, load, dataset, data_files, text_column, board_column,
                              board)


def write_biz(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
              dataset: str = CHAN_DATASET, data_files: str | None = "biz/*.txt", text_column: str = "text",
              thread_column: str | None = None, board_column: str | None = None,
              board: str = "biz") -> dict[str, int]:
    """4chan /biz/ threads (one row a thread) -> toxic/4chan_biz_threads.jsonl.gz with `board, thread,
    text`. The thread id is `thread_column`, else the row's position."""
    if load is None:
        # The default dataset is a folder of one text file per thread: read each file whole.
        extra = {"sample_by": "document"} if data_files and data_files.endswith(".txt") else {}
        load = _hub(dataset, streaming=True, data_files=data_files, **extra)
    rows = _board_rows(_rows(load, "train", f"4chan /biz/ ({dataset})"), board_column, board)
    threads = ({"board": board, "thread": str(r[thread_column] if thread_column else i),
                "text": r[text_column]} for i, r in enumerate(rows) if (r[text_column] or "").strip())
    return {FILES["biz"][0]: _write_jsonl(_path(root, "biz"), _take(threads, _limit("biz", max_docs)))}


_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")  # a tag starts with a letter or a slash, so "a < b > c" survives


def _strip_html(text: str) -> str:
    """4chan post HTML as plain text, as the staged /pol/ 2025 posts were made: `<br>` -> newline, other tags
    removed, then entities unescaped (so an escaped `&lt;b&gt;` stays text). Plain text passes unchanged."""
    return html.unescape(_TAG.sub("", _BR.sub("\n", text)))


def _field(row: Mapping, column: str | None) -> str:
    value = row.get(column) if column else None
    return "" if value is None else str(value)


def write_pol_2025(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
                   dataset: str = POL_DATASET, data_files: str | None = POL_2025_FILES, text_column: str = "text",
                   thread_column: str | None = None, id_column: str | None = None, time_column: str | None = None,
                   country_column: str | None = None) -> dict[str, int]:
    """4chan /pol/ posts -> toxic/4chan_pol_posts_2025.jsonl.gz with `post_id, thread, time, country, file, text`,
    one non-empty post a row (HTML stripped, see `_strip_html`).

    The default reads the last shard of the /pol/ dump `write_pol` streams from the start of, so the two files
    share no post. That dump keeps only the text, so by default the thread is synthetic: `block-<n>` for the n-th
    run of POL_2025_THREAD_POSTS consecutive posts (one document at the default `lines_per_doc`); `post_id` is the
    row's position and `time`, `country` are empty. A dataset with those columns names them in `thread_column`,
    `id_column`, `time_column` and `country_column`. `file` names the source (dataset and data files)."""
    load = load or _hub(dataset, streaming=True, data_files=data_files)
    source = f"{dataset}/{data_files}" if data_files else dataset

    def records() -> Iterator[dict]:
        kept = 0
        for i, row in enumerate(_rows(load, "train", f"4chan /pol/ posts ({dataset})")):
            text = _strip_html(row[text_column] or "").strip()
            if not text:
                continue
            thread = (_field(row, thread_column) if thread_column
                      else f"block-{kept // POL_2025_THREAD_POSTS}")
            yield {"post_id": _field(row, id_column) if id_column else str(i), "thread": thread,
                   "time": _field(row, time_column), "country": _field(row, country_column), "file": source,
                   "text": text}
            kept += 1

    return {FILES["pol_2025"][0]: _write_jsonl(_path(root, "pol_2025"),
                                               _take(records(), _limit("pol_2025", max_docs)))}


# ------------------------------------------------------------------------------------------ web text
def write_blogs(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
                dataset: str = BLOGS_DATASET, config: str | None = BLOGS_CONFIG, split: str = "train",
                text_column: str = "text", blogger_column: str | None = None,
                topic_column: str | None = "job") -> dict[str, int]:
    """Blog Authorship Corpus posts -> clean/blogs_2004.jsonl.gz with `blogger, topic, text`, in file order.

    The hub copy has no blogger id: with `blogger_column` None a blogger is a run of consecutive rows with the
    same BLOG_PROFILE (its rows come blogger by blogger), numbered from 0, so two adjacent bloggers with the same
    profile count as one (the reader only uses the id to name documents). `topic` is `topic_column` (the
    blogger's stated industry). Runs of spaces are collapsed, entities unescaped, and posts under BLOG_MIN_CHARS
    characters dropped, as staged."""
    load = load or _hub(dataset, config, streaming=True)

    def records() -> Iterator[dict]:
        blogger, profile = -1, None
        for row in _rows(load, split, f"blogs ({dataset})"):
            if blogger_column is None:
                key = tuple(row.get(c) for c in BLOG_PROFILE)
                if key != profile:
                    blogger, profile = blogger + 1, key
                who = str(blogger)
            else:
                who = _field(row, blogger_column)
            text = html.unescape(re.sub(r" {2,}", " ", row[text_column] or "")).strip()
            if len(text) >= BLOG_MIN_CHARS:
                yield {"blogger": who, "topic": _field(row, topic_column), "text": text}

    return {FILES["blogs"][0]: _write_jsonl(_path(root, "blogs"), _take(records(), _limit("blogs", max_docs)))}


def _utc_date(value) -> str | None:
    # Pushshift's created_utc: epoch seconds, as a number or a string ("1425254400" or "1425254400.0").
    try:
        return datetime.fromtimestamp(int(float(value)), tz=timezone.utc).date().isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def write_reddit(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
                 dataset: str = REDDIT_DATASET, splits: tuple[str, ...] = REDDIT_SPLITS, text_column: str = "body",
                 subreddit_column: str | None = "subreddit_name_prefixed",
                 time_column: str | None = "created_utc") -> dict[str, int]:
    """Reddit comments -> clean/reddit_2015.jsonl.gz with `file, field, text`.

    Reads each of `splits` (the default dataset has one split per subreddit) for an equal share of the records,
    de-duplicates on the exact text and drops `[deleted]` and `[removed]`; entities are unescaped (the Reddit API
    escapes `&`, `<` and `>`). `file`, the key the reader groups comments by, is `<subreddit>_<UTC date>` (the
    subreddit from `subreddit_column`, `r/` dropped), else the subreddit, else `block-<n>` for every REDDIT_BLOCK
    comments. Every row is a reply, so `field` is `answer`."""
    if not splits:
        raise DataError("write_reddit needs at least one split to read; pass splits=(...)")
    load = load or _hub(dataset, streaming=True)
    limit = _limit("reddit", max_docs)

    def file_key(row: Mapping, n: int) -> str:
        subreddit = _field(row, subreddit_column).removeprefix("r/")
        date = _utc_date(row.get(time_column)) if time_column else None
        if subreddit:
            return f"{subreddit}_{date}" if date else subreddit
        return f"block-{n // REDDIT_BLOCK}"

    def records() -> Iterator[dict]:
        seen: set[bytes] = set()  # digests, not texts: 400,000 comments stay small in memory
        written = 0
        for k, split in enumerate(splits):
            quota = None if limit is None else limit // len(splits) + (k < limit % len(splits))
            taken = 0
            if quota == 0:
                continue
            for row in _rows(load, split, f"Reddit comments ({dataset}, {split})"):
                text = html.unescape(row[text_column] or "").strip()
                digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
                if not text or text in REDDIT_GONE or digest in seen:
                    continue
                seen.add(digest)
                yield {"file": file_key(row, written), "field": "answer", "text": text}
                written += 1
                taken += 1
                if quota is not None and taken >= quota:
                    break

    return {FILES["reddit"][0]: _write_jsonl(_path(root, "reddit"), records())}


def excerpt(text: str, chars: int = WEBTEXT_CHARS) -> str:
    """The start of `text`, whitespace collapsed, cut at the last space within `chars` characters (at `chars` if
    the first word is longer)."""
    text = " ".join(text.split())
    if len(text) <= chars:
        return text
    cut = text.rfind(" ", 0, chars + 1)
    return text[:cut if cut > 0 else chars]


def write_webtext(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
                  dataset: str = WEBTEXT_DATASET, config: str | None = WEBTEXT_CONFIG, split: str = "train",
                  text_column: str = "text", chars: int = WEBTEXT_CHARS) -> dict[str, int]:
    """Web documents -> clean/webtext_excerpts.jsonl.gz with `file, line, text`: one excerpt (`excerpt`, about
    `chars` characters) from the start of each non-empty document; `file` is `<dataset name>.<split>` and `line`
    the document's row in that split."""
    load = load or _hub(dataset, config, streaming=True)
    file = f"{dataset.rsplit('/', 1)[-1]}.{split}"
    records = ({"file": file, "line": i, "text": excerpt(r[text_column], chars)}
               for i, r in enumerate(_rows(load, split, f"web text ({dataset})")) if (r[text_column] or "").strip())
    return {FILES["webtext"][0]: _write_jsonl(_path(root, "webtext"), _take(records, _limit("webtext", max_docs)))}


# --------------------------------------------------------------------------- Civil Comments, Stormfront
def write_civil(root: str | Path, max_docs: int | None = None, load: Loader | None = None,
                threshold: float = CIVIL_THRESHOLD) -> dict[str, int]:
    """Civil Comments (train) rows with toxicity >= threshold -> toxic/civil_comments_toxic_spans.jsonl.gz
    with `comment_id, text`. The hub copy has no id column, so the id is the row's position in train."""
    load = load or _hub("google/civil_comments", streaming=True)
    kept = ({"comment_id": str(r.get("id", i)), "text": r["text"]}
            for i, r in enumerate(_rows(load, "train", "Civil Comments"))
            if r.get("toxicity") is not None and r["toxicity"] >= threshold and (r["text"] or "").strip())
    return {FILES["civil"][0]: _write_jsonl(_path(root, "civil"), _take(kept, _limit("civil", max_docs)))}


def _label_name(label) -> str:
    if isinstance(label, str):
        return label
    return STORMFRONT_LABELS[int(label)]


def write_stormfront(root: str | Path, max_docs: int | None = None,
                     load: Loader | None = None) -> dict[str, int]:
    """Stormfront sentences (`odegiber/hate_speech18`) -> toxic/stormfront_sentences.jsonl.gz."""
    load = load or _hub("odegiber/hate_speech18")
    records = ({"file_id": f"{i:08d}", "user_id": str(r["user_id"]), "subforum_id": str(r["subforum_id"]),
                "num_contexts": str(r["num_contexts"]), "label": _label_name(r["label"]),
                "sampled_split": "", "text": r["text"]}  # the hub copy does not mark the authors' sample
               for i, r in enumerate(_rows(load, "train", "Stormfront")))
    return {FILES["stormfront"][0]: _write_jsonl(_path(root, "stormfront"),
                                                 _take(records, _limit("stormfront", max_docs)))}


# ---------------------------------------------------------------------------------------------- probe
def _decode_text(text: str) -> str:
    # The ToxiGen release stores text as Python bytes literals (b'...'); decode those, keep the rest.
    if len(text) >= 3 and text[0] == "b" and text[1] in "'\"" and text[-1] == text[1]:
        try:
            value = ast.literal_eval(text)
            if isinstance(value, bytes):
                return value.decode("utf-8")
        except (ValueError, SyntaxError, UnicodeDecodeError):
            pass
    return text


def write_toxigen_annotated(root: str | Path, max_docs: int | None = None,
                            load: Loader | None = None) -> dict[str, int]:
    """ToxiGen human-annotated set (`toxigen/toxigen-data`, `annotated`, train) ->
    probe/toxigen_annotated.jsonl: `idx, text` then every original column; scores as floats."""
    load = load or _hub("toxigen/toxigen-data", "annotated")

    def record(i: int, row: Mapping) -> dict:
        out = {"idx": i, "text": _decode_text(row["text"])}
        out.update((k, v) for k, v in row.items() if k not in out)
        out.update((k, float(row[k])) for k in TOXIGEN_FLOATS if row.get(k) is not None)
        return out

    records = (record(i, r) for i, r in enumerate(_rows(load, "train", "ToxiGen")))
    records = _take(records, _limit("toxigen_annotated", max_docs))
    return {FILES["toxigen_annotated"][0]: _write_jsonl(_path(root, "toxigen_annotated"), records)}


# -------------------------------------------------------------------------------------------- prompts
def _prompt_toxicity(row: Mapping) -> float | None:
    return (row.get("prompt") or {}).get("toxicity")


def write_rtp(root: str | Path, max_docs: int | None = None, load: Loader | None = None) -> dict[str, int]:
    """RealToxicityPrompts (train) -> the two DecodingTrust-style subsets: `challenging` prompts, and
    non-challenging prompts with toxicity < 0.5 (a missing score counts as unknown, so excluded). Each
    is the first N of a shuffle with a fixed seed, in the original RTP record format."""
    load = load or _hub("allenai/real-toxicity-prompts")
    n = RTP_PER_FILE if max_docs is None else min(RTP_PER_FILE, _limit("rtp", max_docs))
    rows = list(_rows(load, "train", "RealToxicityPrompts"))
    shuffled = [rows[i] for i in np.random.default_rng(RTP_SEED).permutation(len(rows))]
    toxic = [r for r in shuffled if r.get("challenging") is True][:n]
    nontoxic = [r for r in shuffled if r.get("challenging") is not True
                and _prompt_toxicity(r) is not None and _prompt_toxicity(r) < 0.5][:n]
    return {FILES["rtp_toxic"][0]: _write_jsonl(_path(root, "rtp_toxic"), toxic),
            FILES["rtp_nontoxic"][0]: _write_jsonl(_path(root, "rtp_nontoxic"), nontoxic)}


# ---------------------------------------------------------------------------------------------- judge
def _binary_label(value, column: str) -> int:
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value)
    if not isinstance(value, str) and value in (0, 1):
        return int(value)
    raise DataError(f"a Jigsaw row's {column!r} is {value!r}, not 0 or 1; pass label_column= naming the binary "
                    f"toxic label")


def write_jigsaw(root: str | Path, max_docs: int | None = None, load: Loader | None = None, *,
                 dataset: str = JIGSAW_DATASET, split: str = "test", text_column: str = "comment_text",
                 label_column: str = "label") -> dict[str, int]:
    """Jigsaw talk-page comments -> judge/jigsaw_talk_balanced.jsonl.gz with `id, label, text` (1 = toxic):
    every toxic comment of `split` and as many non-toxic ones, each class a seeded draw (JIGSAW_SEED) when
    there are more than needed, written in file order; `id` is the row's position in the split. `max_docs`
    caps the total, half from each class."""
    load = load or _hub(dataset)
    rows = [(i, _binary_label(r[label_column], label_column), r[text_column])
            for i, r in enumerate(_rows(load, split, f"Jigsaw ({dataset})")) if (r[text_column] or "").strip()]
    toxic = [i for i, (_, label, _) in enumerate(rows) if label == 1]
    benign = [i for i, (_, label, _) in enumerate(rows) if label == 0]
    n = min(len(toxic), len(benign))
    limit = _limit("jigsaw", max_docs)
    n_toxic, n_benign = (n, n) if limit is None else (min(n, (limit + 1) // 2), min(n, limit // 2))
    rng = np.random.default_rng(JIGSAW_SEED)
    chosen = sorted([toxic[j] for j in rng.permutation(len(toxic))[:n_toxic]]
                    + [benign[j] for j in rng.permutation(len(benign))[:n_benign]])
    records = ({"id": rows[j][0], "label": rows[j][1], "text": rows[j][2]} for j in chosen)
    return {FILES["jigsaw"][0]: _write_jsonl(_path(root, "jigsaw"), records)}


# ------------------------------------------------------------------------------------------------ all
WRITERS: dict[str, Callable[..., dict[str, int]]] = {
    "c4": write_c4, "civil": write_civil, "stormfront": write_stormfront,
    "toxigen_annotated": write_toxigen_annotated, "rtp": write_rtp,
    "pol": write_pol, "b": write_b, "biz": write_biz,
    "blogs": write_blogs, "reddit": write_reddit, "webtext": write_webtext, "pol_2025": write_pol_2025,
    "jigsaw": write_jigsaw,
}
#: No canonical hub copy (4chan), or a community copy standing in for the staged file (the second batch): a failure
#: here is recorded in MISSING_FROM_HUB.md instead of stopping the rest.
BEST_EFFORT = ("pol", "b", "biz", "blogs", "reddit", "webtext", "pol_2025", "jigsaw")
NOTE_NAME = "MISSING_FROM_HUB.md"


def _note(failed: dict[str, str]) -> str:
    lines = ["# Files not written from the Hugging Face hub", "",
             "`toxlab data download` could not write these files. Get them as described and place them at",
             "the path shown, relative to this folder.", ""]
    for name, where in NOT_ON_HUB.items():
        path = NOT_ON_HUB_FILES.get(name) or FILES[name][0]
        lines.append(f"- `{path}`: from {where}.")
    for name, reason in failed.items():
        lines.append(f"- `{FILES[name][0]}`: the default hub dataset could not be read ({reason}). Call "
                     f"`toxlab.data.hub.write_{name}(DIR, dataset=..., text_column=...)` with a copy of the source "
                     f"you can reach, or copy the file from another data folder.")
    return "\n".join(lines) + "\n"


def download_all(to: str | Path, max_docs: int | None = None,
                 loaders: Mapping[str, Loader] | None = None) -> Path:
    """Write every hub source into `to` in toxlab's data layout, plus MISSING_FROM_HUB.md; returns the
    folder. `max_docs` caps each source (for a quick look); `loaders` replaces a source's loader by name."""
    root = Path(to).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    loaders = loaders or {}
    failed: dict[str, str] = {}
    for name, writer in WRITERS.items():
        try:
            counts = writer(root, max_docs=max_docs, load=loaders.get(name))
        except (DataError, KeyError) as err:
            if name not in BEST_EFFORT:
                raise
            # A community copy can change its columns: record that like an unreachable dataset.
            failed[name] = (str(err) if isinstance(err, DataError) else
                            f"a row of it has no column {err.args[0]!r}; pass the right `*_column=` names")
            print(f"{FILES[name][0]}: not written (see {NOTE_NAME})", file=sys.stderr)
            continue
        for rel, n in counts.items():
            print(f"{rel}: {n:,} records", file=sys.stderr)
    with _atomic(root / NOTE_NAME) as handle:
        handle.write(_note(failed))
    return root
