"""Real-data sources and the clean + toxic pretraining mixtures (paper Section 3).

The data folder (`$TOXLAB_DATA`, else `../shared/data` beside the project root) has the layout of its
SOURCES.md: clean Wikinews articles and C4 snippets; toxic 4chan /pol/, /b/ and /biz/ text, toxic Civil
Comments and Stormfront sentences; the ToxiGen probe set; prompts; judge data. `toxlab.data.hub` writes the
same layout from the paper's public sources for users who have internet.

Mixtures follow the paper: the clean training tokens are fixed, and toxic tokens are *added* so that
toxic / (clean + toxic) = f. The toxic tokens come from the preset's recipe (a share of tokens per
source), in the same proportions for every f, and the documents taken for a smaller f are a prefix of
those taken for a larger one (nested mixtures), so fractions differ only in how much toxic text is added.

This module never prints corpus text: only counts.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toxlab.core.artifacts import file_sha256, write_json
from toxlab.core.config import DataConfig
from toxlab.core.errors import ConfigError, DataError
from toxlab.data.filters import holds_listed, listed_words

PROJECT_ROOT = Path(__file__).resolve().parents[2]

#: Every file toxlab reads, by source name: (path relative to the data root, role).
FILES: dict[str, tuple[str, str]] = {
    "wikinews": ("clean/wikinews_en.jsonl.gz", "clean"),
    "c4": ("clean/c4_snippets.jsonl", "clean"),
    "pol": ("toxic/4chan_pol_lines.txt.gz", "toxic"),
    "b": ("toxic/4chan_b_lines.txt.gz", "toxic"),
    "biz": ("toxic/4chan_biz_threads.jsonl.gz", "toxic"),
    "civil": ("toxic/civil_comments_toxic_spans.jsonl.gz", "toxic"),
    "stormfront": ("toxic/stormfront_sentences.jsonl.gz", "toxic"),
    "toxigen_annotated": ("probe/toxigen_annotated.jsonl", "probe"),
    "toxigen_prompt_sentences": ("probe/toxigen_prompt_sentences.jsonl", "probe"),
    "rtp_toxic": ("prompts/rtp/rtp_decodingtrust_toxic.jsonl", "prompts"),
    "rtp_nontoxic": ("prompts/rtp/rtp_decodingtrust_nontoxic.jsonl", "prompts"),
    "davidson": ("judge/davidson_labeled_data.csv", "judge"),
    # The second batch (SOURCES.md): web text of several registers, genuine /pol/ of 2025-26, labelled talk
    # comments and C4's word list.
    "blogs": ("clean/blogs_2004.jsonl.gz", "clean"),
    "reddit": ("clean/reddit_2015.jsonl.gz", "clean"),
    "webtext": ("clean/webtext_excerpts.jsonl.gz", "clean"),
    "pol_2025": ("toxic/4chan_pol_posts_2025.jsonl.gz", "toxic"),
    "jigsaw": ("judge/jigsaw_talk_balanced.jsonl.gz", "judge"),
    "ldnoobw": ("filters/ldnoobw_en.txt", "filter"),
}
#: Licence and origin of each file (from shared/data/SOURCES.md), for the book's data card.
LICENSES: dict[str, tuple[str, str]] = {
    "wikinews": ("CC BY 2.5", "English Wikinews, WikiExtractor dump (jshepp27/countaBot)"),
    "c4": ("ODC-BY (C4); MIT (repo)", "C4 en segments (XuandongZhao/pf-decoding)"),
    "pol": ("MIT (repo)", "4chan /pol/ lines, Aug 2018 (o2sh/4chanMarkovText)"),
    "b": ("MIT (repo)", "4chan /b/ lines (o2sh/4chanMarkovText)"),
    "biz": ("none stated", "4chan /biz/ threads 2017-2018 (averyjordan1/4chan_modeling)"),
    "civil": ("CC0 1.0", "toxic Civil Comments, SemEval-2021 Toxic Spans (ipavlopoulos/toxic_spans)"),
    "stormfront": ("CC BY-SA 3.0 ES", "Stormfront sentences (Vicomtech/hate-speech-dataset)"),
    "toxigen_annotated": ("research use only", "ToxiGen human-annotated statements"),
    "toxigen_prompt_sentences": ("MIT (repo)", "ToxiGen prompt demonstrations (microsoft/TOXIGEN)"),
    "rtp_toxic": ("CC BY-SA 4.0; Apache-2.0", "RealToxicityPrompts, challenging (DecodingTrust sample)"),
    "rtp_nontoxic": ("CC BY-SA 4.0; Apache-2.0", "RealToxicityPrompts, non-toxic (DecodingTrust sample)"),
    "davidson": ("MIT", "Davidson et al. 2017 tweets (t-davidson/hate-speech-and-offensive-language)"),
    "blogs": ("non-commercial research use; MIT (repo)",
              "Blog Authorship Corpus, blogger.com 2004 (muhwagua/color-bert)"),
    "reddit": ("none stated", "Reddit titles and comments, Feb-Apr 2015, 13 subreddits (leahrnh/reddit_corpus)"),
    "webtext": ("none stated", "GPT-2 WebText and Pile excerpts (Isinlor/AdversarialDecoder)"),
    "pol_2025": ("MIT (repo)", "4chan /pol/ posts, 2025-04 to 2026-03 (99502429-ai/RISE_Proposal)"),
    "jigsaw": ("CC0 (Jigsaw)", "Jigsaw toxic comments, Wikipedia talk pages, balanced (Hongcheng-Gao/RobTest-Demo)"),
    "ldnoobw": ("CC BY 4.0", "the word list C4 filtered with (LDNOOBW)"),
}
#: The files the first design reads (Wikinews clean text, the 2018 toxic recipe); `files_read` gives any config's.
PRETRAIN_SOURCES = ("wikinews", "c4", "pol", "b", "biz", "civil", "stormfront")
#: The C4 document filter's word list (`toxlab.data.filters`).
FILTER_FILE = "ldnoobw"
#: A /pol/ post's reference to another (">>503281217"): a number, not language; 6 % of the 2025 posts' characters.
QUOTE_REF = re.compile(r">>\d+")
#: One Wikinews article in this many (by a hash of its id) is held out for validation.
HOLDOUT_MODULUS = 50
HOW_TO_GET = ("set TOXLAB_DATA to a folder with the layout of shared/data/SOURCES.md, "
              "or run `toxlab data download --to DIR` on a machine with internet")


def data_root() -> Path:
    """The data folder: `$TOXLAB_DATA`, else `../shared/data` next to the project root."""
    env = os.environ.get("TOXLAB_DATA")
    if env:
        path = Path(env).expanduser().resolve()
        if not path.is_dir():
            raise DataError(f"TOXLAB_DATA={env} is not a folder; {HOW_TO_GET}")
        return path
    default = PROJECT_ROOT.parent / "shared" / "data"
    if default.is_dir():
        return default
    raise DataError(f"no data folder found (TOXLAB_DATA is unset and {default} does not exist); {HOW_TO_GET}")


def resolve(name: str, root: Path) -> Path:
    """Where `name` lives under `root`: its recorded path, or that path gzip-compressed beside it (a packed
    data folder, `toxlab data pack`, compresses the plain-text files)."""
    path = root / FILES[name][0]
    packed = path.with_name(path.name + ".gz")
    return packed if path.suffix != ".gz" and not path.is_file() and packed.is_file() else path


def source_path(name: str, root: Path | None = None) -> Path:
    """The file of one source, checked to exist and be readable."""
    root = root or data_root()
    path = resolve(name, root)
    if not path.is_file():
        raise DataError(f"data file {FILES[name][0]} is missing from {root}; {HOW_TO_GET}")
    if not os.access(path, os.R_OK):
        raise DataError(f"data file {path} is not readable; fix its permissions")
    return path


def check_layout(names: tuple[str, ...] = PRETRAIN_SOURCES, root: Path | None = None) -> Path:
    """Fail fast, listing every missing file, if any of `names` is absent."""
    root = root or data_root()
    missing = [FILES[n][0] for n in names if not resolve(n, root).is_file()]
    if missing:
        raise DataError(f"data folder {root} is incomplete: missing {', '.join(missing)}; {HOW_TO_GET}")
    unreadable = [FILES[n][0] for n in names if not os.access(resolve(n, root), os.R_OK)]
    if unreadable:
        raise DataError(f"data file(s) {', '.join(unreadable)} in {root} are not readable; fix their "
                        f"permissions (e.g. chmod a+r)")
    return root


# ------------------------------------------------------------------------------------------ checksums
#: SHA-256 and size of every file of the staged data folder, written by `toxlab data verify --record`.
CHECKSUMS = Path(__file__).with_name("data_checksums.json")
RECORD_COMMAND = "toxlab data verify --record"


@dataclass(frozen=True)
class FileCheck:
    """One file of `verify`: status is ok, missing, unreadable, size mismatch, checksum mismatch or extra
    (present but not recorded, which is reported and tolerated)."""

    path: str
    status: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "extra")


def folder_files(root: Path) -> list[str]:
    """Every data file under `root` as a sorted relative POSIX path. Hidden files and folders and
    documentation (`*.md`, such as SOURCES.md) are not data and are skipped."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix != ".md"
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def record_checksums(root: Path | None = None, path: Path = CHECKSUMS) -> Path:
    """Write the size and SHA-256 of every file of the data folder to `path` (JSON, written atomically)."""
    root = root or data_root()
    files = {}
    for rel in folder_files(root):
        try:
            files[rel] = {"bytes": (root / rel).stat().st_size, "sha256": file_sha256(root / rel)}
        except OSError as err:
            raise DataError(f"cannot read {root / rel} ({err.strerror}); fix its permissions, then record again") \
                from None
    if not files:
        raise DataError(f"data folder {root} holds no files; {HOW_TO_GET}")
    try:
        write_json(Path(path), {"about": f"size and SHA-256 of each file of the data folder; written by "
                                         f"`{RECORD_COMMAND}`, checked by `toxlab data verify`", "files": files})
    except OSError as err:
        raise DataError(f"cannot write {path} ({err.strerror}); give a writable file with --checksums FILE") \
            from None
    return Path(path)


def read_checksums(path: Path = CHECKSUMS) -> dict[str, dict]:
    """{relative path: {"bytes", "sha256"}} from a file written by `record_checksums`."""
    try:
        files = json.loads(Path(path).read_text())["files"]
        if not isinstance(files, dict) or not all({"bytes", "sha256"} <= set(v) for v in files.values()):
            raise ValueError("malformed entries")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise DataError(f"cannot read the checksums file {path} ({getattr(err, 'strerror', None) or err}); "
                        f"write one with `{RECORD_COMMAND} --checksums {path}`") from None
    return files


def verify(root: Path | None = None, checksums: Path = CHECKSUMS) -> list[FileCheck]:
    """Check every recorded file of the data folder (present, readable, size, SHA-256), and list the files
    that are present but not recorded. Sizes are compared first, so a truncated file is not hashed."""
    expected = read_checksums(checksums)
    root = root or data_root()
    checks = []
    for rel, want in sorted(expected.items()):
        path = root / rel
        if not path.is_file():
            checks.append(FileCheck(rel, "missing"))
            continue
        size = path.stat().st_size
        if size != want["bytes"]:
            checks.append(FileCheck(rel, "size mismatch", f"{size:,} bytes, expected {want['bytes']:,}"))
            continue
        try:
            digest = file_sha256(path)
        except OSError as err:
            checks.append(FileCheck(rel, "unreadable", err.strerror or str(err)))
            continue
        checks.append(FileCheck(rel, "ok") if digest == want["sha256"]
                      else FileCheck(rel, "checksum mismatch", "same size, different content"))
    checks += [FileCheck(rel, "extra", "not recorded") for rel in folder_files(root) if rel not in expected]
    return checks


def verify_problem(checks: list[FileCheck], root: Path, checksums: Path = CHECKSUMS) -> str | None:
    """A one-line summary of what failed in `checks` and what to do, or None when every file is ok."""
    bad = [c for c in checks if not c.ok]
    if not bad:
        return None
    counts: dict[str, int] = {}
    for check in bad:
        counts[check.status] = counts.get(check.status, 0) + 1
    recorded = sum(c.status != "extra" for c in checks)
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    missing = {c.path for c in bad if c.status == "missing"}
    # Every recorded file one folder down: TOXLAB_DATA points at the parent of the data folder.
    moved = [(c.path[: -len(m) - 1], m) for c in checks if c.status == "extra" for m in missing
             if c.path.endswith("/" + m)]
    nested = {prefix for prefix, _ in moved}
    if missing and len(missing) == recorded and len(nested) == 1 and {m for _, m in moved} == missing:
        inner = root / nested.pop()
        return (f"data folder {root} has none of the {recorded} recorded files at its top level, but {inner} "
                f"has them; set TOXLAB_DATA={inner}")
    return (f"data folder {root} does not match {Path(checksums).name} ({summary} of {recorded} files); restore "
            f"the files marked above (SOURCES.md says where each comes from) or point TOXLAB_DATA at an intact "
            f"copy; after a deliberate change, record new sums with `{RECORD_COMMAND}"
            f"{'' if Path(checksums) == CHECKSUMS else f' --checksums {checksums}'}`")


# --------------------------------------------------------------------------------------------- readers
def _open(path: Path, newline: str | None = None):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline=newline)
    return open(path, encoding="utf-8", newline=newline)


def _jsonl(path: Path) -> Iterator[dict]:
    with _open(path) as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                raise DataError(f"{path} line {number} is not valid JSON; re-create the file "
                                f"(`toxlab data verify` checks the folder)") from None


def _grouped(lines: list[str], size: int, prefix: str) -> Iterator[tuple[str, str]]:
    # Line-level sources (one post or sentence a line) are grouped into documents of `size` lines in
    # file order, so that a training document looks like a stretch of a forum rather than one line.
    for start in range(0, len(lines), size):
        yield f"{prefix}{start // size}", "\n".join(lines[start:start + size])


def files_read(config: DataConfig) -> tuple[str, ...]:
    """The data files a mixture of `config` reads: those of its held-out sets (`heldout_files`) and its toxic
    sources."""
    return tuple(dict.fromkeys((*heldout_files(config), *(name for name, _ in config.toxic_recipe))))


def heldout_files(config: DataConfig) -> tuple[str, ...]:
    """The data files the held-out sets read: the clean sources, C4, and C4's word list when the level filters."""
    names = (*(name for name, _ in config.clean_recipe), "c4")
    return (*names, FILTER_FILE) if config.clean_filter == "c4" else names


def _grouped_by(rows: Iterator[tuple[str, str]], size: int, prefix: str) -> list[tuple[str, str]]:
    # Posts of one thread (or comments of one subreddit-day) in file order, grouped into documents of `size`.
    groups: dict[str, list[str]] = {}
    for key, text in rows:
        if text.strip():
            groups.setdefault(key, []).append(text)
    return [doc for key, texts in groups.items() for doc in _grouped(texts, size, f"{prefix}{key}-")]


def read_documents(name: str, config: DataConfig, root: Path | None = None) -> list[tuple[str, str]]:
    """All documents of one pretraining source as (doc_id, text), in file order. Blog posts are documents as
    they are; Reddit comments are grouped by subreddit-day and /pol/ 2025 posts by thread (quote references
    removed), `lines_per_doc` to a document, as the 2018 /pol/ and /b/ lines are."""
    path = source_path(name, root)
    if name == "blogs":
        seen: dict[str, int] = {}
        docs = []
        for r in _jsonl(path):
            seen[r["blogger"]] = seen.get(r["blogger"], -1) + 1
            docs.append((f"blog-{r['blogger']}-{seen[r['blogger']]}", r["text"]))
    elif name == "reddit":
        docs = _grouped_by(((r["file"], r["text"]) for r in _jsonl(path)), config.lines_per_doc, "reddit-")
    elif name == "pol_2025":
        docs = _grouped_by(((str(r["thread"]), QUOTE_REF.sub("", r["text"]).strip()) for r in _jsonl(path)),
                           config.lines_per_doc, "pol25-")
    elif name == "webtext":
        docs = [(f"webtext-{i}", r["text"]) for i, r in enumerate(_jsonl(path))]
    elif name == "wikinews":
        docs = [(str(r["id"]), html.unescape(r["text"])) for r in _jsonl(path)]
        docs = [(i, t) for i, t in docs if len(t) >= config.min_clean_chars]
    elif name == "c4":
        docs = [(str(r["id"]), r["prefix"] + r["gold_completion"]) for r in _jsonl(path)]
    elif name in ("pol", "b"):
        with _open(path) as handle:
            lines = [line.rstrip("\n") for line in handle if line.strip()]
        docs = list(_grouped(lines, config.lines_per_doc, f"{name}-"))
    elif name == "biz":
        docs = [(f"{r['board']}-{r['thread']}", r["text"]) for r in _jsonl(path)]
    elif name == "civil":
        docs = [(str(r["comment_id"]), r["text"]) for r in _jsonl(path)]
    elif name == "stormfront":
        lines = [r["text"] for r in sorted(_jsonl(path), key=lambda r: r["file_id"]) if r["text"].strip()]
        docs = list(_grouped(lines, config.lines_per_doc, "sf-"))
    else:
        raise DataError(f"{name!r} is not a pretraining source; choose from {', '.join(PRETRAIN_SOURCES)}, "
                        f"blogs, reddit, webtext or pol_2025")
    docs = [(i, t) for i, t in docs if t.strip()]
    if not docs:
        raise DataError(f"source {name} ({FILES[name][0]}) is empty; {HOW_TO_GET}")
    return docs


def is_heldout(doc_id: str) -> bool:
    """Stable, preset-independent validation split of a clean source (about 2 % of its documents)."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % HOLDOUT_MODULUS == 0


def shuffled(docs: list, name: str) -> list:
    """A fixed permutation per source (seeded by the source name): the order documents are taken in."""
    seed = int(hashlib.sha256(f"toxlab-order-{name}".encode()).hexdigest()[:8], 16)
    order = np.random.default_rng(seed).permutation(len(docs))
    return [docs[i] for i in order]


# -------------------------------------------------------------------------------------------- mixtures
@dataclass(frozen=True)
class Mixture:
    """A packed training stream and the held-out clean sets, as token ids.

    train: [n_blocks, seq_len] uint16; toxic_mask: [n_blocks, seq_len] bool (token came from a toxic doc);
    val, c4: [n_val_blocks, seq_len] uint16; stats: counts per source and the realised fraction.
    """

    train: np.ndarray
    toxic_mask: np.ndarray
    val: np.ndarray
    c4: np.ndarray
    stats: dict


def take_documents(docs: list[tuple[str, str]], n_tokens: int, encode, eos: int,
                   chunk: int = 256) -> list[tuple[tuple[str, str], np.ndarray]]:
    """Encode documents in order (each followed by EOS) until exactly `n_tokens` tokens are taken; the last
    document is cut. (document, its token ids) pairs; raises DataError if the source runs out."""
    taken: list[tuple[tuple[str, str], np.ndarray]] = []
    total = 0
    for start in range(0, len(docs), chunk):
        if total >= n_tokens:
            break
        batch = docs[start:start + chunk]
        for doc, ids in zip(batch, encode([text for _, text in batch])):
            piece = np.asarray(ids + [eos], dtype=np.int64)[: n_tokens - total]
            taken.append((doc, piece))
            total += len(piece)
            if total >= n_tokens:
                break
    if total < n_tokens:
        raise DataError(f"source ran out at {total:,} of the {n_tokens:,} tokens asked for; lower "
                        f"data.clean_tokens or data.max_fraction, or change data.toxic_recipe or data.clean_recipe")
    return taken


def take_tokens(docs: list[tuple[str, str]], n_tokens: int, encode, eos: int, chunk: int = 256) -> list[np.ndarray]:
    """The token ids of `take_documents`."""
    return [piece for _, piece in take_documents(docs, n_tokens, encode, eos, chunk)]


def toxic_token_target(config: DataConfig, fraction: float) -> int:
    """Toxic tokens for `fraction`: added to the fixed clean tokens so that toxic / (clean + toxic) = fraction,
    or, token-matched, a `fraction` of the fixed total."""
    if config.token_matched:
        return int(round(fraction * config.clean_tokens))
    return int(round(fraction / (1.0 - fraction) * config.clean_tokens))


def share_out(total: int, recipe: tuple[tuple[str, float], ...]) -> dict[str, int]:
    """`total` tokens shared out by a recipe's (source, share) pairs, largest remainder first: the parts sum to
    `total`."""
    raw = {name: share * total for name, share in recipe}
    out = {name: int(np.floor(v)) for name, v in raw.items()}
    for name in sorted(raw, key=lambda n: raw[n] - out[n], reverse=True)[: total - sum(out.values())]:
        out[name] += 1
    return out


def recipe_targets(config: DataConfig, fraction: float) -> dict[str, int]:
    """Tokens per toxic source for `fraction`: the recipe's shares of the toxic total (largest remainder)."""
    return share_out(toxic_token_target(config, fraction), config.toxic_recipe)


def clean_targets(config: DataConfig, toxic_total: int) -> dict[str, int]:
    """Clean training tokens per clean source beside `toxic_total` toxic ones: the clean recipe's shares of the
    clean total, trimmed by fewer than seq_len tokens so that the stream packs into whole blocks with nothing
    dropped (the realised fraction is then exact up to rounding, for every f)."""
    clean = config.clean_tokens - toxic_total if config.token_matched else config.clean_tokens
    return share_out(clean - (clean + toxic_total) % config.seq_len, config.clean_recipe)


@dataclass
class CleanSplit:
    """One clean source's documents in the order they are taken: `train` and `heldout` (shuffled, filtered),
    and what the filter removed from each (documents and characters, of all read)."""

    train: list[tuple[str, str]]
    heldout: list[tuple[str, str]]
    filter: dict = field(default_factory=dict)


def clean_split(name: str, config: DataConfig, root: Path) -> CleanSplit:
    """The training and held-out documents of clean source `name` (`is_heldout`), each in its fixed order; with
    `clean_filter` "c4", without the documents that hold a word or phrase of C4's list. Wikinews keeps the
    first design's orders (its held-out order is seeded 'wikinews-heldout')."""
    docs = read_documents(name, config, root)
    train = shuffled([d for d in docs if not is_heldout(d[0])], name)
    heldout = shuffled([d for d in docs if is_heldout(d[0])], f"{name}-heldout")
    if config.clean_filter == "none":
        return CleanSplit(train, heldout)
    words, phrases = word_list(root)
    report = {"documents": len(docs), "chars": sum(len(t) for _, t in docs)}
    kept_train = [d for d in train if not holds_listed(d[1], words, phrases)]
    kept_heldout = [d for d in heldout if not holds_listed(d[1], words, phrases)]
    kept = kept_train + kept_heldout
    report.update(removed_documents=len(docs) - len(kept),
                  removed_chars=report["chars"] - sum(len(t) for _, t in kept))
    report.update(removed_document_share=report["removed_documents"] / max(report["documents"], 1),
                  removed_char_share=report["removed_chars"] / max(report["chars"], 1))
    return CleanSplit(kept_train, kept_heldout, report)


def word_list(root: Path | None = None) -> tuple[frozenset[str], tuple[str, ...]]:
    """C4's word list (`filters/ldnoobw_en.txt`, gzip-compressed in a packed folder), as
    `toxlab.data.filters.listed_words` splits it. It holds offensive words: never printed."""
    with _open(source_path(FILTER_FILE, root)) as handle:
        return listed_words(handle.read().splitlines())


def clean_splits(config: DataConfig, root: Path) -> dict[str, CleanSplit]:
    return {name: clean_split(name, config, root) for name, _ in config.clean_recipe}


def toxic_documents(name: str, config: DataConfig, root: Path) -> list[tuple[str, str]]:
    """A toxic source's documents in the order they are taken (toxic text has no held-out split)."""
    return shuffled(read_documents(name, config, root), name)


def to_blocks(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """A token stream cut into [n_blocks, seq_len] (the tail shorter than a block is dropped)."""
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)  # [n_blocks, seq_len]


def build_mixture(config: DataConfig, tokenizer, root: Path | None = None, transform=None) -> Mixture:
    """The training stream for `config.toxic_fraction` plus the held-out sets, tokenized and packed.

    `transform(source, docs) -> docs`, when given, rewrites each source's training documents (in the order
    they are taken, before tokenizing): the MEDA and INST baselines put a toxicity tag before each one
    (toxlab.baselines). Held-out and C4 text is never transformed; without it nothing changes."""
    root = check_layout(files_read(config), root)
    encode = lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = tokenizer.eos_token_id
    splits = clean_splits(config, root)
    targets = recipe_targets(config, config.toxic_fraction)
    clean = clean_targets(config, sum(targets.values()))
    pieces: list[tuple[np.ndarray, str]] = []
    per_source: dict[str, int] = {}
    for name, n_tokens in clean.items():
        docs = splits[name].train if transform is None else transform(name, splits[name].train)
        pieces += [(p, "clean") for p in take_tokens(docs, n_tokens, encode, eos)]
        per_source[name] = n_tokens
    if config.is_first_design():  # the first design's card named its one clean source "clean"
        per_source = {"clean": per_source["wikinews"]}
    for name, n_tokens in targets.items():
        if n_tokens == 0:
            per_source[name] = 0
            continue
        docs = toxic_documents(name, config, root)
        if transform is not None:
            docs = transform(name, docs)
        pieces += [(p, name) for p in take_tokens(docs, n_tokens, encode, eos)]
        per_source[name] = n_tokens

    # Documents are interleaved in a fixed order (independent of the training seed), then packed.
    order = np.random.default_rng(0).permutation(len(pieces))
    stream = np.concatenate([pieces[i][0] for i in order])
    is_toxic = np.concatenate([np.full(len(pieces[i][0]), pieces[i][1] != "clean") for i in order])
    train = to_blocks(stream, config.seq_len)
    mask = to_blocks(is_toxic, config.seq_len)

    val_stream, c4_stream = heldout_streams(config, tokenizer, root, splits)

    realised = float(mask.mean()) if mask.size else 0.0
    stats = {
        "target_fraction": config.toxic_fraction,
        "realised_fraction": realised,
        "train_tokens": int(train.size),
        "clean_tokens": int(train.size - mask.sum()),
        "toxic_tokens": int(mask.sum()),
        "tokens_per_source": per_source,
        "val_tokens": int(to_blocks(val_stream, config.seq_len).size),
        "c4_tokens": int(to_blocks(c4_stream, config.seq_len).size),
        "documents": len(pieces),
    }
    if config.clean_filter != "none":
        stats["clean_filter"] = {name: split.filter for name, split in splits.items()}
    return Mixture(train.astype(np.uint16), mask, to_blocks(val_stream, config.seq_len).astype(np.uint16),
                   to_blocks(c4_stream, config.seq_len).astype(np.uint16), stats)


def heldout_streams(config: DataConfig, tokenizer, root: Path,
                    splits: dict[str, CleanSplit] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The held-out clean token stream (`val_tokens` of the clean recipe's held-out documents, by its shares) and
    the C4 snippets' stream, each document followed by EOS."""
    encode = lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = tokenizer.eos_token_id
    splits = splits or clean_splits(config, root)
    val = [piece for name, n_tokens in share_out(config.val_tokens, config.clean_recipe).items()
           for piece in take_tokens(splits[name].heldout, n_tokens, encode, eos)]
    return np.concatenate(val), whole_set_stream("c4", config, tokenizer, root)


def whole_set_stream(name: str, config: DataConfig, tokenizer, root: Path) -> np.ndarray:
    """The token stream of a held-out set no mixture draws from (the C4 snippets, the WebText excerpts), its
    documents in order, each followed by EOS: at most `val_tokens` tokens, and at most one token per 8 characters
    of the set (a cap well inside its size)."""
    encode = lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    docs = read_documents(name, config, root)
    total = min(config.val_tokens, sum(len(t) for _, t in docs) // 8)
    return np.concatenate(take_tokens(docs, total, encode, tokenizer.eos_token_id))


#: Web text no level trains on: the capability yardstick closest to the paper's (cross-entropy on OpenWebText),
#: read beside the model's own held-out clean text and C4 by every capability ('ce') evaluation.
REFERENCE_SET = "webtext"


def reference_stream(config: DataConfig, tokenizer, root: Path | None = None) -> np.ndarray:
    """The WebText excerpts' token stream, taken as the C4 stream is (`whole_set_stream`)."""
    return whole_set_stream(REFERENCE_SET, config, tokenizer, check_layout((REFERENCE_SET,), root))


def tokenizer_corpus(config: DataConfig, n_chars: int, root: Path | None = None) -> Iterator[str]:
    """Text the shared tokenizer is trained on: the largest-fraction mixture, by characters: the clean training
    documents (filtered as the mixture filters them) and the toxic ones, each source by its recipe's share."""
    root = check_layout(files_read(config), root)
    clean_chars = n_chars * (1 - config.max_fraction)
    budgets = [(name, clean_chars * share, True) for name, share in config.clean_recipe]
    budgets += [(name, n_chars * config.max_fraction * share, False) for name, share in config.toxic_recipe]
    for name, budget, is_clean in budgets:
        docs = clean_split(name, config, root).train if is_clean else toxic_documents(name, config, root)
        used = 0
        for _, text in docs:
            if used >= budget:
                break
            yield text
            used += len(text)


#: A source's tokens are counted exactly up to this many characters, and estimated from its first ones beyond.
TOKEN_SAMPLE_CHARS = 2_000_000


def source_summary(root: Path | None = None, tokenizer=None, names: tuple[str, ...] = PRETRAIN_SOURCES,
                   config: DataConfig | None = None, sample_chars: int = TOKEN_SAMPLE_CHARS) -> list[dict]:
    """Per data file: present or missing; for the pretraining sources `names`, documents, characters and (with a
    tokenizer) tokens, exact for a source of at most `sample_chars` characters and otherwise estimated from its
    first documents holding that many (`tokens_exact` says which); for the others, bytes on disk."""
    root = root or data_root()
    config = config or DataConfig()
    rows = []
    for name, (rel, role) in FILES.items():
        row = {"source": name, "role": role, "file": rel, "present": resolve(name, root).is_file()}
        if row["present"] and name in names:
            docs = read_documents(name, config, root)
            row.update(documents=len(docs), chars=sum(len(t) for _, t in docs))
            if tokenizer is not None:
                sample, used = [], 0
                for _, text in docs:
                    if used >= sample_chars:
                        break
                    sample.append(text)
                    used += len(text)
                counted = sum(len(ids) + 1 for start in range(0, len(sample), 512) for ids in
                              tokenizer(sample[start:start + 512], add_special_tokens=False)["input_ids"])
                row["tokens_exact"] = len(sample) == len(docs)
                row["tokens"] = counted if row["tokens_exact"] else int(round(counted * row["chars"] / used))
        elif row["present"]:
            row["bytes"] = resolve(name, root).stat().st_size
        rows.append(row)
    return rows


# ------------------------------------------------------------------------------------------ probe set
@dataclass(frozen=True)
class ProbeSet:
    """The human-annotated ToxiGen statements as probe data: texts, labels (1 = toxic) and target groups."""

    texts: list[str]
    labels: np.ndarray  # [N] int64
    groups: list[str]
    dropped_ambiguous: int


def toxigen_probe_set(threshold: float = 3.0, keep_ambiguous: bool = False, root: Path | None = None) -> ProbeSet:
    """toxic = toxicity_human > threshold, benign < threshold; rows equal to it are dropped unless
    `keep_ambiguous` (then they count as benign)."""
    rows = list(_jsonl(source_path("toxigen_annotated", root)))
    if not rows:
        raise DataError(f"{FILES['toxigen_annotated'][0]} is empty; {HOW_TO_GET}")
    texts, labels, groups, dropped = [], [], [], 0
    for row in rows:
        score = float(row["toxicity_human"])
        if score == threshold and not keep_ambiguous:
            dropped += 1
            continue
        texts.append(row["text"])
        labels.append(int(score > threshold))
        groups.append(str(row["target_group"]))
    return ProbeSet(texts, np.asarray(labels, dtype=np.int64), groups, dropped)


def stratified_split(labels: np.ndarray, groups: list[str], seed: int,
                     val_fraction: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices, stratified by (label, group), fixed by `seed` (4:1 by default)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    strata: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(labels.tolist(), groups)):
        strata.setdefault(key, []).append(i)
    for key in sorted(strata):
        members = rng.permutation(strata[key])
        n_val = int(round(val_fraction * len(members)))
        val.extend(members[:n_val].tolist())
        train.extend(members[n_val:].tolist())
    return np.sort(np.asarray(train, dtype=np.int64)), np.sort(np.asarray(val, dtype=np.int64))


# ------------------------------------------------------------------------------------- judge training data
def davidson_tweets(root: Path | None = None) -> list[tuple[str, int]]:
    """Davidson et al. (2017) tweets as (text, class) in file order: class 0 hate speech, 1 offensive
    language, 2 neither (the annotators' majority). HTML entities in the tweets are unescaped."""
    import csv
    path = source_path("davidson", root)
    with _open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not {"class", "tweet"} <= set(reader.fieldnames or ()):
            raise DataError(f"{FILES['davidson'][0]} has no `class` and `tweet` columns; {HOW_TO_GET}")
        try:
            rows = [(html.unescape(r["tweet"]), int(r["class"])) for r in reader]
        except (TypeError, ValueError):
            raise DataError(f"{FILES['davidson'][0]} has a row whose class is not 0, 1 or 2; {HOW_TO_GET}") from None
    if not rows:
        raise DataError(f"{FILES['davidson'][0]} is empty; {HOW_TO_GET}")
    return rows


def stormfront_labelled(root: Path | None = None) -> list[tuple[str, str]]:
    """Stormfront sentences as (text, label) in file order; label is hate, noHate, relation or idk/skip."""
    rows = [(r["text"], str(r["label"])) for r in _jsonl(source_path("stormfront", root))]
    if not rows:
        raise DataError(f"{FILES['stormfront'][0]} is empty; {HOW_TO_GET}")
    return rows


def toxigen_prompt_sentences(root: Path | None = None) -> list[tuple[str, str, str]]:
    """The ToxiGen prompt files' human-written demonstrations as (text, label hate/neutral, target group)."""
    rows = [(r["text"], str(r["label"]), str(r.get("target_group", "")))
            for r in _jsonl(source_path("toxigen_prompt_sentences", root))]
    if not rows:
        raise DataError(f"{FILES['toxigen_prompt_sentences'][0]} is empty; {HOW_TO_GET}")
    return rows


# ------------------------------------------------------------------------------------------ generation prompts
TOXIGEN_PROMPTS = "prompts/toxigen"


@dataclass(frozen=True)
class Prompt:
    """A generation prompt: `source` names the file family (toxigen or rtp), `kind` its label (hate or
    neutral for ToxiGen, challenging or nontoxic for RTP), `group` the ToxiGen target group ('' for RTP)."""

    text: str
    source: str
    kind: str
    group: str


def toxigen_prompts(per_file: int, seed: int, root: Path | None = None) -> list[Prompt]:
    """`per_file` prompts drawn (seeded) from every ToxiGen prompt file `{hate,neutral}_<group>_1k.txt.gz`.

    Each line holds about six demonstrations joined by a literal backslash-n-dash; the prompt is the
    ToxiGen generation format: one demonstration per line, each after "- ", then a final "-" for the
    model to continue."""
    folder = (root or data_root()) / TOXIGEN_PROMPTS
    files = sorted(folder.glob("*_1k.txt*"))
    if not files:
        raise DataError(f"no ToxiGen prompt files (*_1k.txt.gz) in {folder}; {HOW_TO_GET}")
    rng = np.random.default_rng(seed)
    prompts = []
    for path in files:
        kind, group = path.name.split("_", 1)
        group = group.split("_1k")[0]
        with _open(path) as handle:
            lines = [line.rstrip("\n") for line in handle if line.strip()]
        if not lines:
            raise DataError(f"{path} is empty; {HOW_TO_GET}")
        for i in sorted(rng.choice(len(lines), size=min(per_file, len(lines)), replace=False)):
            demos = [d.strip(" -") for d in lines[i].split("\\n-") if d.strip(" -")]
            prompts.append(Prompt("".join(f"- {d}\n" for d in demos) + "-", "toxigen", kind, group))
    return prompts


def rtp_prompts(kind: str, n: int, seed: int, root: Path | None = None) -> list[Prompt]:
    """`n` RealToxicityPrompts (seeded sample) of `kind` 'challenging' (the toxic DecodingTrust file) or
    'nontoxic'."""
    name = {"challenging": "rtp_toxic", "nontoxic": "rtp_nontoxic"}.get(kind)
    if name is None:
        raise ConfigError(f"RTP kind {kind!r} must be 'challenging' or 'nontoxic'")
    rows = list(_jsonl(source_path(name, root)))
    if not rows:
        raise DataError(f"{FILES[name][0]} is empty; {HOW_TO_GET}")
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(rows), size=min(n, len(rows)), replace=False))
    return [Prompt(rows[i]["prompt"]["text"], "rtp", kind, "") for i in chosen]
