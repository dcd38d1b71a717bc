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
- ToxiGen prompt sentences, the ToxiGen prompt files and the Davidson judge data live on GitHub, not
  the hub: `download_all` writes `MISSING_FROM_HUB.md` saying where to get them.

Every file is written to a temporary file in its own folder and then renamed, so an interrupted download
never leaves a half-written file under a name toxlab reads. Nothing here prints corpus text: only counts.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
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
DEFAULT_LIMITS: dict[str, int | None] = {
    "wikinews": 40_000, "c4": 1_500, "pol": 200_000, "b": 50_000, "biz": 25_000,
    "civil": None, "stormfront": None, "toxigen_annotated": None,
}
RTP_PER_FILE = 1_200  # the size of each DecodingTrust RealToxicityPrompts subset
RTP_SEED = 0
CIVIL_THRESHOLD = 0.5
STORMFRONT_LABELS = ("noHate", "hate", "idk/skip", "relation")  # ClassLabel order of hate_speech18
TOXIGEN_FLOATS = ("toxicity_ai", "toxicity_human", "intent")

POL_DATASET = "kjj0/4chanpol"
CHAN_DATASET = "lesserfield/4chan-datasets"

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


# ------------------------------------------------------------------------------------------------ all
WRITERS: dict[str, Callable[..., dict[str, int]]] = {
    "c4": write_c4, "civil": write_civil, "stormfront": write_stormfront,
    "toxigen_annotated": write_toxigen_annotated, "rtp": write_rtp,
    "pol": write_pol, "b": write_b, "biz": write_biz,
}
#: No canonical hub copy: a failure here is recorded in MISSING_FROM_HUB.md instead of stopping the rest.
BEST_EFFORT = ("pol", "b", "biz")
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
                     f"`toxlab.data.hub.write_{name}(DIR, dataset=..., text_column=...)` with a 4chan dataset you "
                     f"can reach, or copy the file from another data folder.")
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
        except DataError as err:
            if name not in BEST_EFFORT:
                raise
            failed[name] = str(err)
            print(f"{FILES[name][0]}: not written (see {NOTE_NAME})", file=sys.stderr)
            continue
        for rel, n in counts.items():
            print(f"{rel}: {n:,} records", file=sys.stderr)
    with _atomic(root / NOTE_NAME) as handle:
        handle.write(_note(failed))
    return root
