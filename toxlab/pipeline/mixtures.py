"""The data stages (paper Section 3): the shared tokenizer, the clean + toxic mixtures (plain, or with each
document's judge-score tag for the MEDA and INST baselines, from `document_scores`), what the data folder holds,
and how toxic the training text is by a lexical judge."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from toxlab import baselines
from toxlab.baselines import DocumentTagger, check_tagging, tagging_spec
from toxlab.core import artifacts
from toxlab.core.artifacts import Entry
from toxlab.core.config import RunConfig
from toxlab.data import corpora
from toxlab.data.tokenizer import load_tokenizer as load
from toxlab.data.tokenizer import train_tokenizer
from toxlab.judges.lexical import ProfanityCheckJudge
from toxlab.pipeline.common import data_fingerprint, log_line
from toxlab.pipeline.judging import judge_identity, judge_or_default
from toxlab.pipeline.versions import (
    DATA_INFO_VERSION,
    DOCUMENT_SCORES_VERSION,
    MIXTURE_TOXICITY_VERSION,
    MIXTURE_VERSION,
    TOKENIZER_VERSION,
)


def _data_dict(config: RunConfig, keep_fraction: bool = True) -> dict:
    # the tokenizer is shared by every fraction of a preset (DataConfig.tokenizer_keyed)
    return config.data.keyed() if keep_fraction else config.data.tokenizer_keyed()


def tokenizer(config: RunConfig) -> Entry:
    """The preset's byte-level BPE (a transformers tokenizer folder), trained once and shared."""
    root = corpora.data_root()
    stage_config = {"data": _data_dict(config, keep_fraction=False), "tokenizer": dataclasses.asdict(config.tokenizer),
                    "files": data_fingerprint(root, corpora.files_read(config.data))}

    def build(out: Path, work: Path) -> dict:
        tok = train_tokenizer(corpora.tokenizer_corpus(config.data, config.tokenizer.train_chars, root),
                              config.tokenizer)
        tok.save_pretrained(str(out / "tokenizer"))
        return {"vocab_size": len(tok)}

    return artifacts.cached("tokenizer", TOKENIZER_VERSION, stage_config, build)


def load_tokenizer(config: RunConfig):
    return load(tokenizer(config).file("tokenizer"))


def mixture(config: RunConfig, tagging: str = "none", judge=None) -> Entry:
    """Token blocks of the clean + toxic mixture for `config.data.toxic_fraction`, and the held-out sets.

    `tagging` 'meda' or 'inst' puts each training document's judge-score tag before it (the MEDA and INST
    baselines, toxlab.baselines; scores from `document_scores` with `judge`); 'none' is the paper's mixture."""
    tok_entry = tokenizer(config)
    root = corpora.data_root()
    stage_config = {"data": _data_dict(config), "files": data_fingerprint(root, corpora.files_read(config.data))}
    upstream = {"tokenizer": tok_entry.key}
    transform = None
    if tagging != "none":  # the default adds nothing to the key
        check_tagging(tagging)
        scores_entry = document_scores(config, judge)
        stage_config["tagging"] = tagging_spec(tagging)
        upstream["document_scores"] = scores_entry.key
        transform = DocumentTagger(tagging, scores_entry.json("scores.json"))

    def build(out: Path, work: Path) -> dict:
        mix = corpora.build_mixture(config.data, load(tok_entry.file("tokenizer")), root, transform=transform)
        np.save(out / "train.npy", mix.train)
        np.save(out / "toxic_mask.npy", mix.toxic_mask)
        np.save(out / "val.npy", mix.val)
        np.save(out / "c4.npy", mix.c4)
        artifacts.write_json(out / "stats.json", mix.stats)
        return {"realised_fraction": mix.stats["realised_fraction"]}

    return artifacts.cached("mixture", MIXTURE_VERSION, stage_config, build, upstream=upstream)


#: How many characters of a large source `data_info` counts tokens on (the rest is estimated from them).
TOKEN_SAMPLE_CHARS = corpora.TOKEN_SAMPLE_CHARS


def data_info(config: RunConfig) -> Entry:
    """Per-source documents, characters and tokens (with the preset's tokenizer; estimated from a sample for the
    large sources) of the data folder, for the sources the level pretrains on."""
    root = corpora.data_root()
    names = tuple(n for n in corpora.files_read(config.data) if n != corpora.FILTER_FILE)
    present = tuple(n for n in names if corpora.resolve(n, root).is_file())
    tok_entry = tokenizer(config) if present == names else None

    def build(out: Path, work: Path) -> None:
        tok = load_tokenizer(config) if tok_entry else None
        artifacts.write_json(out / "sources.json", {"root": str(root), "sources": corpora.source_summary(
            root, tok, names, config.data)})

    fingerprint = data_fingerprint(root, present) if present else {}
    stage_config = {"files": fingerprint, "present": {n: corpora.resolve(n, root).is_file() for n in corpora.FILES}}
    return artifacts.cached("data_info", DATA_INFO_VERSION, stage_config, build,
                            upstream={"tokenizer": tok_entry.key} if tok_entry else {})


def mixture_toxicity(config: RunConfig, n_blocks: int = 300) -> Entry:
    """How toxic the training text is, by the lexical judge alt-profanity-check: `n_blocks` random training
    blocks are cut at EOS into document pieces, each piece is scored, and `toxicity.json` reports the share
    of tokens in pieces scored >= 0.5, overall and for pieces from clean and from toxic sources."""
    judge = ProfanityCheckJudge()  # chapter 3's judge, kept when the default judge became toxlab's MiniLM
    mix_entry = mixture(config)
    tok_entry = tokenizer(config)

    def build(out: Path, work: Path) -> None:
        tok = load(tok_entry.file("tokenizer"))
        blocks = np.load(mix_entry.file("train.npy"))
        mask = np.load(mix_entry.file("toxic_mask.npy"))
        rows = np.random.default_rng(0).choice(len(blocks), size=min(n_blocks, len(blocks)), replace=False)
        pieces, lengths, is_toxic = [], [], []
        for row in rows:
            ids, toxic = blocks[row].astype(np.int64), mask[row]
            cuts = np.flatnonzero(ids == tok.eos_token_id)
            for start, stop in zip(np.r_[0, cuts + 1], np.r_[cuts, len(ids)]):
                if stop - start < 8:  # fragments at block edges carry no judgement
                    continue
                pieces.append(tok.decode(ids[start:stop].tolist()))
                lengths.append(stop - start)
                is_toxic.append(bool(toxic[start:stop].mean() > 0.5))
        scores = judge.score(pieces)
        lengths, is_toxic = np.array(lengths), np.array(is_toxic)
        flagged = scores >= 0.5

        def share(select):
            return float((lengths[select] * flagged[select]).sum() / max(lengths[select].sum(), 1))

        artifacts.write_json(out / "toxicity.json", {
            "judge": judge.name, "blocks": int(len(rows)), "pieces": int(len(pieces)),
            "flagged_token_share": share(np.ones(len(pieces), bool)),
            "flagged_token_share_clean_sources": share(~is_toxic),
            "flagged_token_share_toxic_sources": share(is_toxic),
            "mean_score": float(scores.mean()) if len(scores) else 0.0})

    return artifacts.cached("mixture_toxicity", MIXTURE_TOXICITY_VERSION,
                            {"n_blocks": n_blocks, "judge": judge.name}, build,
                            upstream={"mixture": mix_entry.key})


def document_scores(config: RunConfig, judge=None, progress: bool = True) -> Entry:
    """The judge's score of every training document the (untagged) mixture of `config` takes, per source:
    `scores.json` ({source: {"ids", "scores"}}, in the order taken) and `summary.json` (documents per MEDA
    bucket and INST tag, scoring time). Shared by the MEDA and INST mixtures of a fraction: scored once."""
    judge = judge_or_default(config, judge)
    tok_entry = tokenizer(config)
    root = corpora.data_root()
    stage_config = {"data": _data_dict(config), "files": data_fingerprint(root, corpora.files_read(config.data)),
                    "judge": judge_identity(judge)}

    def build(out: Path, work: Path) -> dict:
        docs = baselines.documents_taken(config.data, load_tokenizer(config), root)
        n_docs = sum(len(d) for d in docs.values())
        if progress:
            log_line(f"document_scores: scoring {n_docs:,} training documents with the {judge.name} judge")
        started = time.perf_counter()
        scores = baselines.score_documents(docs, judge)
        artifacts.write_json(out / "scores.json", scores)
        artifacts.write_json(out / "summary.json", {"judge": judge_identity(judge), "documents": n_docs,
                                                     "score_time_s": time.perf_counter() - started,
                                                     "sources": baselines.score_summary(scores)})
        return {"documents": n_docs}

    return artifacts.cached("document_scores", DOCUMENT_SCORES_VERSION, stage_config, build,
                            upstream={"tokenizer": tok_entry.key})
