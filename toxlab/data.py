"""Real-data sources and the clean + toxic pretraining mixtures (paper Section 3).

The data folder (`$TOXLAB_DATA`, else `../shared/data` beside the project root) has the layout of its
SOURCES.md: clean Wikinews articles and C4 snippets; toxic 4chan /pol/, /b/ and /biz/ text, toxic Civil
Comments and Stormfront sentences; the ToxiGen probe set; prompts; judge data. `toxlab.hub` writes the
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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toxlab.config import DataConfig
from toxlab.errors import DataError

PROJECT_ROOT = Path(__file__).resolve().parents[1]

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
}
PRETRAIN_SOURCES = ("wikinews", "c4", "pol", "b", "biz", "civil", "stormfront")
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


def source_path(name: str, root: Path | None = None) -> Path:
    """The file of one source, checked to exist and be readable."""
    root = root or data_root()
    path = root / FILES[name][0]
    if not path.is_file():
        raise DataError(f"data file {FILES[name][0]} is missing from {root}; {HOW_TO_GET}")
    if not os.access(path, os.R_OK):
        raise DataError(f"data file {path} is not readable; fix its permissions")
    return path


def check_layout(names: tuple[str, ...] = PRETRAIN_SOURCES, root: Path | None = None) -> Path:
    """Fail fast, listing every missing file, if any of `names` is absent."""
    root = root or data_root()
    missing = [FILES[n][0] for n in names if not (root / FILES[n][0]).is_file()]
    if missing:
        raise DataError(f"data folder {root} is incomplete: missing {', '.join(missing)}; {HOW_TO_GET}")
    return root


# --------------------------------------------------------------------------------------------- readers
def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


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


def read_documents(name: str, config: DataConfig, root: Path | None = None) -> list[tuple[str, str]]:
    """All documents of one pretraining source as (doc_id, text), in file order."""
    path = source_path(name, root)
    if name == "wikinews":
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
        raise DataError(f"{name!r} is not a pretraining source; choose from {PRETRAIN_SOURCES}")
    docs = [(i, t) for i, t in docs if t.strip()]
    if not docs:
        raise DataError(f"source {name} ({FILES[name][0]}) is empty; {HOW_TO_GET}")
    return docs


def is_heldout(doc_id: str) -> bool:
    """Stable, preset-independent validation split of Wikinews (about 2 % of articles)."""
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


def take_tokens(docs: list[tuple[str, str]], n_tokens: int, encode, eos: int,
                chunk: int = 256) -> list[np.ndarray]:
    """Encode documents in order (each followed by EOS) until exactly `n_tokens` tokens are taken;
    the last document is cut. Raises DataError if the source runs out."""
    taken: list[np.ndarray] = []
    total = 0
    for start in range(0, len(docs), chunk):
        if total >= n_tokens:
            break
        for ids in encode([text for _, text in docs[start:start + chunk]]):
            piece = np.asarray(ids + [eos], dtype=np.int64)[: n_tokens - total]
            taken.append(piece)
            total += len(piece)
            if total >= n_tokens:
                break
    if total < n_tokens:
        raise DataError(f"source ran out at {total:,} of the {n_tokens:,} tokens asked for; lower "
                        f"data.clean_tokens or data.max_fraction, or change data.toxic_recipe")
    return taken


def toxic_token_target(clean_tokens: int, fraction: float) -> int:
    """Toxic tokens to add so that toxic / (clean + toxic) = fraction."""
    return int(round(fraction / (1.0 - fraction) * clean_tokens))


def recipe_targets(config: DataConfig, fraction: float) -> dict[str, int]:
    """Tokens per toxic source for `fraction`: the recipe's shares of the toxic total (largest remainder)."""
    total = toxic_token_target(config.clean_tokens, fraction)
    raw = {name: share * total for name, share in config.toxic_recipe}
    out = {name: int(np.floor(v)) for name, v in raw.items()}
    for name in sorted(raw, key=lambda n: raw[n] - out[n], reverse=True)[: total - sum(out.values())]:
        out[name] += 1
    return out


def _blocks(stream: np.ndarray, seq_len: int) -> np.ndarray:
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)  # [n_blocks, seq_len]


def build_mixture(config: DataConfig, tokenizer, root: Path | None = None) -> Mixture:
    """The training stream for `config.toxic_fraction` plus the held-out sets, tokenized and packed."""
    root = check_layout(PRETRAIN_SOURCES, root)
    encode = lambda texts: tokenizer(texts, add_special_tokens=False)["input_ids"]  # noqa: E731
    eos = tokenizer.eos_token_id
    wiki = read_documents("wikinews", config, root)
    train_docs = shuffled([d for d in wiki if not is_heldout(d[0])], "wikinews")
    heldout = shuffled([d for d in wiki if is_heldout(d[0])], "wikinews-heldout")

    targets = recipe_targets(config, config.toxic_fraction)
    # Trim fewer than seq_len clean tokens so the stream packs into whole blocks with nothing dropped:
    # the realised fraction is then exact up to rounding, for every f.
    n_clean = config.clean_tokens - (config.clean_tokens + sum(targets.values())) % config.seq_len
    pieces: list[tuple[np.ndarray, str]] = [(p, "clean") for p in
                                           take_tokens(train_docs, n_clean, encode, eos)]
    per_source = {"clean": n_clean}
    for name, n_tokens in targets.items():
        if n_tokens == 0:
            per_source[name] = 0
            continue
        docs = shuffled(read_documents(name, config, root), name)
        pieces += [(p, name) for p in take_tokens(docs, n_tokens, encode, eos)]
        per_source[name] = n_tokens

    # Documents are interleaved in a fixed order (independent of the training seed), then packed.
    order = np.random.default_rng(0).permutation(len(pieces))
    stream = np.concatenate([pieces[i][0] for i in order])
    is_toxic = np.concatenate([np.full(len(pieces[i][0]), pieces[i][1] != "clean") for i in order])
    train = _blocks(stream, config.seq_len)
    mask = _blocks(is_toxic, config.seq_len)

    val_stream = np.concatenate(take_tokens(heldout, config.val_tokens, encode, eos))
    c4_docs = read_documents("c4", config, root)
    c4_total = min(config.val_tokens, sum(len(t) for _, t in c4_docs) // 8)  # a cap well inside C4's size
    c4_stream = np.concatenate(take_tokens(c4_docs, c4_total, encode, eos))

    realised = float(mask.mean()) if mask.size else 0.0
    stats = {
        "target_fraction": config.toxic_fraction,
        "realised_fraction": realised,
        "train_tokens": int(train.size),
        "clean_tokens": int(train.size - mask.sum()),
        "toxic_tokens": int(mask.sum()),
        "tokens_per_source": per_source,
        "val_tokens": int(_blocks(val_stream, config.seq_len).size),
        "c4_tokens": int(_blocks(c4_stream, config.seq_len).size),
        "documents": len(pieces),
    }
    return Mixture(train.astype(np.uint16), mask, _blocks(val_stream, config.seq_len).astype(np.uint16),
                   _blocks(c4_stream, config.seq_len).astype(np.uint16), stats)


def tokenizer_corpus(config: DataConfig, n_chars: int, root: Path | None = None) -> Iterator[str]:
    """Text the shared tokenizer is trained on: the largest-fraction mixture, by characters: clean
    Wikinews (training split only) and toxic documents in the recipe's proportions."""
    root = check_layout(PRETRAIN_SOURCES, root)
    wiki = read_documents("wikinews", config, root)
    budgets = {"wikinews": n_chars * (1 - config.max_fraction)}
    budgets.update({name: n_chars * config.max_fraction * share for name, share in config.toxic_recipe})
    for name, budget in budgets.items():
        docs = ([d for d in wiki if not is_heldout(d[0])] if name == "wikinews"
                else read_documents(name, config, root))
        used = 0
        for _, text in shuffled(docs, name):
            if used >= budget:
                break
            yield text
            used += len(text)


def source_summary(root: Path | None = None, tokenizer=None) -> list[dict]:
    """Per source: present or missing, documents, characters and (with a tokenizer) tokens."""
    root = root or data_root()
    config = DataConfig()
    rows = []
    for name, (rel, role) in FILES.items():
        row = {"source": name, "role": role, "file": rel, "present": (root / rel).is_file()}
        if row["present"] and name in PRETRAIN_SOURCES:
            docs = read_documents(name, config, root)
            row.update(documents=len(docs), chars=sum(len(t) for _, t in docs))
            if tokenizer is not None:
                row["tokens"] = sum(len(ids) + 1 for start in range(0, len(docs), 512) for ids in
                                    tokenizer([t for _, t in docs[start:start + 512]],
                                              add_special_tokens=False)["input_ids"])
        elif row["present"]:
            row["bytes"] = (root / rel).stat().st_size
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
