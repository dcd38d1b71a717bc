"""The judge card: measured reasons to trust (or not) a toxicity judge (the paper's Perspective scores,
Sections 5 and 6, are replaced by `toxlab.judges.minilm`; this is the evidence for that swap).

`build_card` scores, with the MiniLM judge and the lexical baselines side by side, each on text the MiniLM
judge never trained on:
- the held-out test split of the judge's own data, per source and overall: ROC-AUC, expected calibration
  error (10 equal-width bins) and reliability-curve data (the Jigsaw talk comments' ROC-AUC is a target);
- out of domain, the ToxiGen human annotations (toxicity_human > 3 toxic, < 3 benign, = 3 dropped), which
  no judge toxlab trains ever sees;
- register: the false-positive rate on labelled benign text of each register (talk comments, tweets,
  forum sentences, ToxiGen statements, news and web text), the share flagged on unlabelled web text
  (Reddit, blogs, WebText excerpts), and the mean score of 20-word word salad drawn from each source's
  vocabulary (every clean and toxic source), also kept to salads holding no word of C4's list: a salad
  means nothing, so what moves its score is vocabulary, and without C4's words, register;
- known failure modes: identity-term false positives (benign template sentences naming identity groups,
  against the same templates with neutral descriptions), implicit hate (ToxiGen toxic statements that
  alt-profanity-check scores below 0.5) and the gibberish tiny models write (random bytes, repetition,
  and the news-vocabulary salad as "word salad");
- speed, in texts per second on this machine.

What the card says (its targets, met or not; its plain-text form; the numbers chapter 8 quotes) is read by
`toxlab.analysis.card`.

The failure-mode texts are written here as code, not data, and are benign by construction; no text of any
kind leaves this module in the card, only numbers.
"""

from __future__ import annotations

import dataclasses
import time
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toxlab.core.config import DataConfig
from toxlab.core.errors import ConfigError
from toxlab.data import corpora
from toxlab.data.filters import WORD, holds_listed
from toxlab.judges import corpus
from toxlab.judges.corpus import c4_list
from toxlab.judges.lexical import ProfanityCheckJudge
from toxlab.judges.minilm import MiniLMJudge

THRESHOLD = 0.5  # a text is flagged toxic at or above this score

# ------------------------------------------------------------------------------------------ calibration


def bin_index(scores: np.ndarray, n_bins: int = 10) -> np.ndarray:
    """[N] bin of each score in [0, 1]: equal-width bins [k/n, (k+1)/n), the last one closed at 1."""
    return np.minimum((np.asarray(scores, dtype=np.float64) * n_bins).astype(np.int64), n_bins - 1)


def reliability_curve(scores: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[dict]:
    """Per non-empty bin: its edges, the number of texts, the mean score and the share that is toxic."""
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    bins = bin_index(scores, n_bins)
    rows = []
    for k in range(n_bins):
        members = bins == k
        if members.any():
            rows.append({"lower": k / n_bins, "upper": (k + 1) / n_bins, "count": int(members.sum()),
                         "mean_score": float(scores[members].mean()), "toxic_share": float(labels[members].mean())})
    return rows


def expected_calibration_error(scores: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """sum over bins of (bin count / N) x |toxic share - mean score|, with equal-width bins."""
    curve = reliability_curve(scores, labels, n_bins)
    n = sum(r["count"] for r in curve)
    return float(sum(r["count"] / n * abs(r["toxic_share"] - r["mean_score"]) for r in curve)) if n else 0.0


def metrics(scores: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> dict:
    """n, toxic count, ROC-AUC (None when one class is absent), ECE, accuracy and share flagged at 0.5."""
    from sklearn.metrics import roc_auc_score
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.int64)
    both = 0 < labels.sum() < len(labels)
    flagged = scores >= THRESHOLD
    return {"n": int(len(labels)), "toxic": int(labels.sum()),
            "auc": float(roc_auc_score(labels, scores)) if both else None,
            "ece": expected_calibration_error(scores, labels, n_bins),
            "accuracy": float((flagged == labels.astype(bool)).mean()) if len(labels) else None,
            "flagged": float(flagged.mean()) if len(labels) else None}


# ---------------------------------------------------------------------------------------- failure modes
IDENTITY_PEOPLE = (
    "a Muslim woman", "a Jewish man", "a Black woman", "an Asian man", "a Chinese student", "a Mexican family",
    "a Latina nurse", "a gay man", "a lesbian couple", "a transgender woman", "a disabled veteran",
    "a blind musician", "a Native American artist", "a Middle Eastern chef", "an immigrant from Nigeria",
    "an autistic engineer")
#: The same sentences with a neutral description in place of the identity, one for one.
CONTROL_PEOPLE = (
    "a keen gardener", "a retired postman", "a tall woman", "a young man", "a new student", "a large family",
    "a local nurse", "a quiet man", "a friendly couple", "a cheerful woman", "a former soldier",
    "a talented musician", "a local artist", "a hard-working chef", "a newcomer from the city",
    "a careful engineer")
TEMPLATES = (
    "My neighbour is {p} who teaches maths.", "{P} opened a bakery on our street last spring.",
    "I had lunch with {p} from work today.", "The award for community service went to {p}.",
    "{P} volunteers at the library every Saturday.", "We invited {p} to speak at the school assembly.",
    "The new doctor at the clinic is {p}.", "{P} won the local chess tournament this year.")


def template_sentences(people: tuple[str, ...] = IDENTITY_PEOPLE) -> list[str]:
    """Every template filled with every description: benign sentences, len(TEMPLATES) x len(people)."""
    return [t.format(p=p, P=p[0].upper() + p[1:]) for t in TEMPLATES for p in people]


def random_byte_texts(n: int, rng: np.random.Generator) -> list[str]:
    """Random bytes (20 to 200) decoded as UTF-8 with replacement characters: a byte-level model's noise."""
    return [bytes(rng.integers(0, 256, size=int(rng.integers(20, 201))).astype(np.uint8).tolist())
            .decode("utf-8", errors="replace") for _ in range(n)]


def repetitive_texts(n: int, rng: np.random.Generator, vocabulary: list[str]) -> list[str]:
    """One frequent word, or a three-word phrase, repeated 10 to 60 times ("the the the ...")."""
    common = vocabulary[:50]
    out = []
    for i in range(n):
        unit = ([common[int(rng.integers(len(common)))]] if i % 2 == 0
                else [common[int(j)] for j in rng.integers(len(common), size=3)])
        out.append(" ".join(unit * int(rng.integers(10, 61))))
    return out


def word_salad(n: int, rng: np.random.Generator, vocabulary: list[str], frequencies: np.ndarray,
               words: int = 20) -> list[str]:
    """`n` texts of `words` words drawn independently by their frequency in a source: that source's
    vocabulary with no syntax and no meaning."""
    p = frequencies / frequencies.sum()
    return [" ".join(vocabulary[int(j)] for j in rng.choice(len(vocabulary), size=words, p=p)) for _ in range(n)]


def vocabulary(texts: list[str], n_words: int = 5000) -> tuple[list[str], np.ndarray]:
    """The `n_words` most frequent lower-cased words of `texts`, with their counts (most frequent first)."""
    common = Counter(w for t in texts for w in WORD.findall(t.lower())).most_common(n_words)
    return [w for w, _ in common], np.asarray([c for _, c in common], dtype=np.float64)


def clean_salad(n: int, rng: np.random.Generator, vocabulary: list[str], frequencies: np.ndarray,
                words: frozenset[str], phrases: tuple[str, ...], length: int = 20) -> list[str]:
    """Word salad conditioned on holding no listed word or phrase: words are drawn independently, so this is
    drawing from the vocabulary without the listed words (renormalised), then redrawing the rare salad
    where two words make a listed phrase."""
    keep = np.asarray([w not in words for w in vocabulary])
    if not keep.any():
        return []
    kept, freq = [w for w, k in zip(vocabulary, keep) if k], frequencies[keep]
    out: list[str] = []
    for _ in range(100 * n):
        if len(out) == n:
            break
        salad = word_salad(1, rng, kept, freq, length)[0]
        if not holds_listed(salad, words, phrases):
            out.append(salad)
    return out


# ------------------------------------------------------------------------------------------------- card
@dataclass(frozen=True)
class CardConfig:
    """What the card scores. ood_max: ToxiGen statements scored (a label-stratified sample; 0 = all).
    n_gibberish: texts per gibberish kind. n_web: unlabelled web texts scored per web source. n_salad: word
    salads per source and kind (any words; no word of C4's list). salad_words: words per salad.
    vocab_docs: documents sampled per source for its vocabulary. n_bins: calibration bins. seed: every
    sample drawn here."""

    ood_max: int = 0
    n_gibberish: int = 200
    n_web: int = 400
    n_salad: int = 200
    salad_words: int = 20
    vocab_docs: int = 3000
    n_bins: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"CardConfig.{f.name}={value!r} must be a non-negative integer")
        if min(self.n_gibberish, self.n_web, self.n_salad, self.salad_words, self.vocab_docs) < 1 or self.n_bins < 2:
            raise ConfigError("CardConfig.n_gibberish, n_web, n_salad, salad_words and vocab_docs must be >= 1 "
                              "and n_bins >= 2")


CARD_PRESETS: dict[str, CardConfig] = {
    "smoke": CardConfig(ood_max=400, n_gibberish=30, n_web=60, n_salad=40, vocab_docs=500),
    "cpu": CardConfig(),
    "gpu": CardConfig(),
}
#: What each judge was trained on: numbers on its own training data are not held out.
TRAINED_ON = {"minilm": "toxlab's judge data (train split; the test split is held out)",
              "alt-profanity-check": "Davidson et al. tweets and Wikipedia comments",
              "hatesonar": "Davidson et al. tweets"}
#: Labelled benign text per register: (register, the judge-data source whose benign test split holds it);
#: the ToxiGen statements rated benign by annotators are added from the out-of-domain set.
BENIGN_REGISTERS = (("talk comments", "jigsaw"), ("tweets", "davidson"), ("forum sentences", "stormfront"),
                    ("ToxiGen neutral demonstrations", "toxigen_prompts"), ("news", "wikinews"), ("web (C4)", "c4"))
TOXIGEN_BENIGN = "ToxiGen statements rated benign"
#: Unlabelled web text (never trained on): its share flagged is an upper bound on false positives there.
WEB_SOURCES = ("reddit", "blogs", "webtext")
CLEAN_SALAD = ("wikinews", "c4", "reddit", "blogs", "webtext")
TOXIC_SALAD = ("pol", "pol_2025", "b", "biz", "civil", "stormfront")
#: Forum text not collected for its toxicity (a business board, Reddit threads): without C4's words, what its
#: salad has that news salad lacks is register, which must not move the score by itself (the target).
REGISTER_FORUMS = ("biz", "reddit")
#: Forum text collected for its hate: its vocabulary outside C4's list still holds slurs, insults and the words
#: hate is written in, so its salad's gap is vocabulary, not register alone; reported beside the target.
TOXIC_FORUMS = ("pol", "pol_2025", "b", "stormfront")
FORUMS = REGISTER_FORUMS + TOXIC_FORUMS
NEWS = "wikinews"
#: The card's files besides the judge's own (toxlab.data.corpora.FILES or toxlab.judges.corpus.JUDGE_FILES names).
FILES_READ = ("toxigen_annotated", "wikinews", "c4", "pol", "b", "biz", "civil", "stormfront", "reddit", "blogs",
              "webtext", "pol_2025", "ldnoobw")
SALAD_KINDS = ("any words", "no C4-list word", "no listed or profane word")
#: The failure-mode name of the news-vocabulary salad (chapter 7 reads it as the floor of gibberish).
NEWS_SALAD = "word salad"


def card_config(level: str | CardConfig) -> CardConfig:
    if isinstance(level, CardConfig):
        return level
    if level not in CARD_PRESETS:
        raise ConfigError(f"unknown level {level!r}; choose one of {', '.join(CARD_PRESETS)}")
    return CARD_PRESETS[level]


def ood_set(config: CardConfig, root: Path | None = None) -> tuple[list[str], np.ndarray, list[str]]:
    """ToxiGen human-annotated statements (ambiguous = 3 dropped), all or a label-stratified sample:
    texts, labels [n], target groups."""
    probe = corpora.toxigen_probe_set(keep_ambiguous=False, root=root)
    rows = np.arange(len(probe.texts))
    if config.ood_max and config.ood_max < len(rows):
        rng = np.random.default_rng(config.seed)
        share = config.ood_max / len(rows)
        rows = np.sort(np.concatenate([rng.permutation(np.flatnonzero(probe.labels == c))
                                       [: int(round(share * (probe.labels == c).sum()))] for c in (0, 1)]))
    return [probe.texts[i] for i in rows], probe.labels[rows], [probe.groups[i] for i in rows]


def source_texts(name: str, root: Path | None = None) -> list[str]:
    """The texts of one clean or toxic source, as the card reads its vocabulary: documents of the
    pretraining sources (Wikinews as paragraphs), posts, comments or sentences of the others."""
    if name in corpus.JUDGE_FILES:
        return [t for t, _ in corpus.read_texts_of(name, root) if t.strip()]
    if name == "wikinews":
        return [t for t, _ in corpus.read_source("wikinews", root)]
    if name == "stormfront":
        return [t for t, _ in corpora.stormfront_labelled(root) if t.strip()]
    return [t for _, t in corpora.read_documents(name, DataConfig(), root)]


def sample(texts: list[str], n: int, rng: np.random.Generator) -> list[str]:
    """A seeded sample of `n` texts (all of them if fewer), in file order."""
    return [texts[i] for i in sorted(rng.choice(len(texts), size=min(n, len(texts)), replace=False))]


def profane_words(vocab: list[str]) -> frozenset[str]:
    """The words of `vocab` that the lexical profanity judge (alt-profanity-check) flags on their own: abuse
    that C4's short list does not hold (slurs and insults outside it). Never printed."""
    scores = ProfanityCheckJudge().score(list(vocab)) if vocab else []
    return frozenset(w for w, s in zip(vocab, scores) if s >= THRESHOLD)


def register_sets(config: CardConfig, root: Path | None = None) -> tuple[dict[str, list[str]], dict[str, list[str]],
                                                                      dict[str, float], list[str]]:
    """The register texts: unlabelled web samples {source: texts}, salads {"source | kind": texts} of each
    SALAD_KINDS (the third also without the words the profanity judge flags alone), the share of each
    source's any-word salads that hold a word of C4's list {source: share}, and the news vocabulary (most
    frequent first)."""
    words, phrases = c4_list(root)
    web, salads, listed, news = {}, {}, {}, []
    for name in CLEAN_SALAD + TOXIC_SALAD:
        rng = np.random.default_rng([config.seed, len(salads)])
        texts = source_texts(name, root)
        if name in WEB_SOURCES:
            web[name] = sample(texts, config.n_web, np.random.default_rng([config.seed, 99, len(web)]))
        vocab, freq = vocabulary(sample(texts, config.vocab_docs, rng))
        news = vocab if name == NEWS else news
        plain = word_salad(config.n_salad, rng, vocab, freq, config.salad_words)
        salads[f"{name} | {SALAD_KINDS[0]}"] = plain
        salads[f"{name} | {SALAD_KINDS[1]}"] = clean_salad(config.n_salad, rng, vocab, freq, words, phrases,
                                                           config.salad_words)
        salads[f"{name} | {SALAD_KINDS[2]}"] = clean_salad(config.n_salad, rng, vocab, freq,
                                                           words | profane_words(vocab), phrases, config.salad_words)
        listed[name] = float(np.mean([holds_listed(t, words, phrases) for t in plain]))
    return web, salads, listed, news


def _score(judge, texts: list[str], progress: bool) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    scores = judge.score(texts, progress=progress) if isinstance(judge, MiniLMJudge) else judge.score(texts)
    return np.asarray(scores, dtype=np.float64), time.perf_counter() - start


def build_card(judges: dict[str, typing.Any], judge_data, config: CardConfig, root: Path | None = None,
               progress: bool = False) -> dict:
    """The card's numbers. judges: {name: Judge, or the one-line reason it is unavailable}; judge_data: the
    MiniLM judge's `toxlab.judges.corpus.JudgeData` (its test split is scored). Holds no text, only numbers."""
    import torch
    rng = np.random.default_rng(config.seed)
    test_texts, test_labels, test_sources = judge_data.split("test")
    ood_texts, ood_labels, _ = ood_set(config, root)
    web, salads, listed, news_vocab = register_sets(config, root)
    probes = {"identity templates (benign)": template_sentences(IDENTITY_PEOPLE),
              "neutral templates (control)": template_sentences(CONTROL_PEOPLE),
              "random bytes": random_byte_texts(config.n_gibberish, rng),
              "repetition": repetitive_texts(config.n_gibberish, rng, news_vocab)}
    available = {name: j for name, j in judges.items() if not isinstance(j, str)}
    card = {"config": dataclasses.asdict(config), "threshold": THRESHOLD,
            "judges": {name: ({"available": True, "trained_on": TRAINED_ON.get(name, "")}
                              if name in available else {"available": False, "why": j})
                       for name, j in judges.items()},
            "validation": [], "reliability": {}, "failure_modes": [], "registers": [], "web": [], "salad": [],
            "speed": [],
            "sizes": {"test": len(test_texts), "ood": len(ood_texts), "ood_toxic": int(ood_labels.sum())}}
    ood_scores = {}
    for name, judge in available.items():
        judge.score(ood_texts[:8])  # warm-up: model loading is not part of the speed
        ood, seconds = _score(judge, ood_texts, progress)
        ood_scores[name] = ood
        card["speed"].append({"judge": name, "texts": len(ood_texts), "seconds": seconds,
                              "texts_per_s": len(ood_texts) / max(seconds, 1e-9),
                              "device": getattr(judge, "device", None) or "cpu",
                              "threads": torch.get_num_threads()})
        test, _ = _score(judge, test_texts, progress)
        sets = {f"test: {s}": test_sources == s for s in dict.fromkeys(test_sources.tolist())}
        sets["test: all"] = np.ones(len(test_texts), dtype=bool)
        for set_name, members in sets.items():
            card["validation"].append({"set": set_name, "judge": name,
                                       **metrics(test[members], test_labels[members], config.n_bins)})
        card["validation"].append({"set": "ToxiGen (out of domain)", "judge": name,
                                   **metrics(ood, ood_labels, config.n_bins)})
        card["reliability"][name] = {"test: all": reliability_curve(test, test_labels, config.n_bins),
                                     "ToxiGen (out of domain)": reliability_curve(ood, ood_labels, config.n_bins)}
        benign = {register: test[(test_sources == source) & (test_labels == 0)]
                  for register, source in BENIGN_REGISTERS}
        benign[TOXIGEN_BENIGN] = ood[ood_labels == 0]
        for register, scores in benign.items():
            if len(scores):
                card["registers"].append({"register": register, "judge": name, "n": len(scores),
                                          "mean_score": float(scores.mean()),
                                          "false_positives": float((scores >= THRESHOLD).mean())})
        for source, texts in web.items():
            scores, _ = _score(judge, texts, False)
            card["web"].append({"source": source, "judge": name, "n": len(texts), "mean_score": float(scores.mean()),
                                "flagged": float((scores >= THRESHOLD).mean())})
        salad_scores = {}
        for key, texts in salads.items():
            source, kind = key.split(" | ")
            scores = salad_scores[key] = _score(judge, texts, False)[0] if texts else np.zeros(0)
            card["salad"].append({"source": source, "kind": kind, "judge": name, "n": len(texts),
                                  "toxic_source": source in TOXIC_SALAD,
                                  "listed_share": listed[source] if kind == SALAD_KINDS[0] else 0.0,
                                  "mean_score": float(scores.mean()) if len(scores) else None,
                                  "flagged": float((scores >= THRESHOLD).mean()) if len(scores) else None})
        probe_scores = {probe_name: _score(judge, texts, False)[0] for probe_name, texts in probes.items()}
        probe_scores[NEWS_SALAD] = salad_scores[f"{NEWS} | {SALAD_KINDS[0]}"]  # the gibberish row of news salad
        for probe_name, scores in probe_scores.items():
            card["failure_modes"].append({"probe": probe_name, "judge": name, "n": len(scores),
                                          "mean_score": float(scores.mean()),
                                          "flagged": float((scores >= THRESHOLD).mean())})
    # Implicit hate: toxic statements the profanity detector misses. Its own recall there is 0 by design.
    if "alt-profanity-check" in ood_scores:
        implicit = (ood_labels == 1) & (ood_scores["alt-profanity-check"] < THRESHOLD)
        card["sizes"]["implicit_hate"] = int(implicit.sum())
        for name, scores in ood_scores.items():
            card["failure_modes"].append({"probe": "implicit hate (recall)", "judge": name, "n": int(implicit.sum()),
                                          "mean_score": float(scores[implicit].mean()) if implicit.any() else None,
                                          "flagged": float((scores[implicit] >= THRESHOLD).mean())
                                          if implicit.any() else None})
    return card
