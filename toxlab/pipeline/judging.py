"""The judge stages and the judge registry: toxlab's MiniLM judge trained once per level, its judge card, and
every judge by name (`get_judge`; the MiniLM one needs its cached stage, which is why the registry lives here)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from toxlab.core import artifacts
from toxlab.core.artifacts import Entry
from toxlab.core.config import RunConfig
from toxlab.core.errors import ConfigError, JudgeUnavailableError
from toxlab.data import corpora
from toxlab.judges import corpus, encoder, minilm
from toxlab.judges import judge_card as cards
from toxlab.judges.base import Judge
from toxlab.judges.corpus import DEFAULT_LEVEL
from toxlab.judges.lexical import HateSonarJudge, ProfanityCheckJudge
from toxlab.judges.minilm import MiniLMJudge
from toxlab.judges.remote import PerspectiveJudge, detoxify_judge, toxigen_roberta_judge
from toxlab.pipeline.common import log_line
from toxlab.pipeline.versions import JUDGE_CARD_VERSION, JUDGE_VERSION


def judge_identity(judge) -> dict:
    """What a result keyed by its judge records of it: the judge's name and version."""
    return {"name": judge.name, "version": str(getattr(judge, "version", ""))}


def judge(level="cpu", progress: bool = True) -> Entry:
    """Train (or reuse) toxlab's MiniLM toxicity judge for a level (smoke, cpu, gpu) or a
    `toxlab.judges.corpus.JudgeConfig`: the entry holds `judge/` (head.safetensors, judge.json) and `training.json`
    (per-source counts, the l2 search, timings). Keyed by the config and the SHA-256 of every data file it
    reads and of the encoder's weights."""
    config = corpus.judge_config(level)
    root = corpora.data_root()
    stage_config = {"judge": dataclasses.asdict(config), "files": corpus.fingerprint(corpus.files_read(config), root),
                    "encoder_sha256": encoder.encoder_fingerprint()}

    def build(out: Path, work: Path) -> dict:
        if progress:
            log_line(f"judge: training the MiniLM judge (max {config.max_per_class:,} texts per source and label)")
        trained = minilm.train(config, root, progress=progress)
        trained.judge.save(out / "judge")
        artifacts.write_json(out / "training.json", trained.report)
        return {"l2": trained.report["l2"], "n_train": trained.report["n_train"]}

    return artifacts.cached("judge", JUDGE_VERSION, stage_config, build, seed=config.seed)


def load_judge(level="cpu", progress: bool = True):
    """The trained MiniLM judge (a `toxlab.judges.minilm.MiniLMJudge`) of a level or JudgeConfig; its `version` is
    the cache key it was trained under."""
    entry = judge(level, progress)
    return MiniLMJudge.load(entry.file("judge"), version=entry.key)


def judge_card(level: str = "cpu", progress: bool = True) -> Entry:
    """The judge card of a level's MiniLM judge beside the lexical judges (`toxlab.judges.judge_card`): `card.json`
    holds the validation table, reliability curves, failure modes, speed and the training summary. A
    lexical judge that cannot run here is reported as unavailable, with the reason."""
    config, card_config = corpus.judge_config(level), cards.card_config(level)
    judge_entry = judge(level, progress)
    root = corpora.data_root()
    lexical: dict = {}
    for name, make in (("alt-profanity-check", ProfanityCheckJudge), ("hatesonar", HateSonarJudge)):
        try:
            lexical[name] = make()
        except JudgeUnavailableError as err:  # e.g. on a GPU machine that carries only what the run needs
            lexical[name] = str(err)
    stage_config = {"card": dataclasses.asdict(card_config), "judge": dataclasses.asdict(config),
                    "available": {name: not isinstance(j, str) for name, j in lexical.items()},
                    "files": corpus.fingerprint(cards.FILES_READ, root)}

    def build(out: Path, work: Path) -> None:
        training = judge_entry.json("training.json")
        judge_data = corpus.training_set(config, root)
        if corpus.data_digest(judge_data) != training["data_sha256"]:
            raise ConfigError("the judge's data split could not be rebuilt as it was trained; clear the judge "
                              "entry from the cache and run again")
        minilm = MiniLMJudge.load(judge_entry.file("judge"), version=judge_entry.key)
        card = cards.build_card({"minilm": minilm, **lexical}, judge_data, card_config, root, progress)
        card["level"] = level
        card["training"] = {k: v for k, v in training.items() if k != "config"}
        card["judge_config"] = training["config"]
        artifacts.write_json(out / "card.json", card)

    return artifacts.cached("judge_card", JUDGE_CARD_VERSION, stage_config, build,
                            upstream={"judge": judge_entry.key})


def judge_or_default(config: RunConfig, judge):
    """`judge`, or the default judge (the MiniLM judge of the preset's level) when None."""
    return judge if judge is not None else default_judge(config.preset)


# --------------------------------------------------------------------------------------------- registry
#: name -> (what it is, offline?)
JUDGES: dict[str, tuple[str, bool]] = {
    "minilm": ("toxlab's MiniLM judge (default; trained on first use, then cached)", True),
    "profanity-check": ("alt-profanity-check, lexical SVM", True),
    "hatesonar": ("hatesonar, lexical logistic regression (optional extra `judges`)", True),
    "toxigen-roberta": ("tomh/toxigen_roberta via transformers (downloads once)", False),
    "detoxify": ("unitary/toxic-bert via transformers (downloads once)", False),
    "perspective": ("Perspective API (internet and PERSPECTIVE_API_KEY)", False),
}


def get_judge(name: str, level: str = DEFAULT_LEVEL, progress: bool = True) -> Judge:
    """The judge called `name` (see JUDGES); for 'minilm', the one trained at `level` (trained on first use).
    Raises ConfigError for an unknown name, JudgeUnavailableError when it cannot run here."""
    if name == "minilm":
        return load_judge(level, progress=progress)
    if name == "profanity-check":
        return ProfanityCheckJudge()
    if name == "hatesonar":
        return HateSonarJudge()
    if name == "toxigen-roberta":
        return toxigen_roberta_judge()
    if name == "detoxify":
        return detoxify_judge()
    if name == "perspective":
        return PerspectiveJudge()
    raise ConfigError(f"unknown judge {name!r}; choose one of {', '.join(JUDGES)}")


def default_judge(level: str = DEFAULT_LEVEL) -> Judge:
    """The trained MiniLM judge of `level` (the cpu level by default): trained on first use, cached after."""
    return get_judge("minilm", level)
