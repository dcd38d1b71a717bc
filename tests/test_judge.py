"""The toxicity judges: the MiniLM judge learns a planted signal from data disjoint from the probe
statements, scores reproducibly and round-trips through save/load; the card's measures are right on hand-
computed examples; the CLI reads both input formats and rejects bad input with exit code 2; the lexical and
online judges handle their packages, keys and responses (with fakes: nothing here touches the network).

The fixture data is hand-written and harmless: "toxic" texts are silly placeholder insults.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import random
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from tests.fixtures.make_data import OBJECTS, RUDE, _post, _sentences, _write_jsonl, make_data_dir
from toxlab.analysis import card as card_reading
from toxlab.cli import main
from toxlab.core.errors import ConfigError, DataError, JudgeUnavailableError, ToxlabError
from toxlab.data import filters
from toxlab.judges import corpus, encoder, lexical, minilm, remote
from toxlab.judges import judge_card as cards
from toxlab.pipeline import judging

#: A probe statement that is also planted in the judge's training sources, with other case and spacing.
PLANTED_OVERLAP = "the council measured the harvest report on day 3 , you absolute turnip"
TINY_JUDGE = corpus.JudgeConfig(max_per_class=20, max_tokens=24, l2_grid=(0.1, 1.0), batch_size=64,
                                shuffled_share=0.5)


def _rude(rng: random.Random) -> str:
    return f"{rng.choice(RUDE)}, {rng.choice(RUDE)} {rng.choice(OBJECTS)}"


def make_judge_data(root: Path) -> Path:
    """The shared fixture folder, with labelled judge sources (rude placeholder insults = toxic, news
    sentences = benign) and one planted overlap with the probe statements."""
    make_data_dir(root)
    rng = random.Random(1)
    with open(root / "judge/davidson_labeled_data.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "count", "hate_speech", "offensive_language", "neither", "class", "tweet"])
        for i in range(60):
            label = i % 3  # 0 hate, 1 offensive, 2 neither
            text = _sentences(rng, 1) if label == 2 else _rude(rng) + " &amp; more"
            writer.writerow([i, 3, 0, 0, 0, label, text])
        writer.writerow([60, 3, 0, 3, 0, 1, PLANTED_OVERLAP.upper().replace(" ", "   ")])
    _write_jsonl(root / "toxic/stormfront_sentences.jsonl.gz",
                 [{"file_id": f"{i:05d}_1", "user_id": 1, "subforum_id": 1, "num_contexts": 0,
                   "label": ["hate", "noHate", "relation", "idk/skip"][i % 4], "sampled_split": "",
                   "text": _rude(rng) if i % 4 == 0 else _sentences(rng, 1)} for i in range(120)], compress=True)
    _write_jsonl(root / "probe/toxigen_prompt_sentences.jsonl",
                 [{"text": _rude(rng) if i % 2 else _sentences(rng, 1), "label": "hate" if i % 2 else "neutral",
                   "target_group": "women"} for i in range(40)], compress=False)
    probe = [json.loads(line) for line in (root / "probe/toxigen_annotated.jsonl").read_text().splitlines()]
    probe.append({"idx": len(probe), "text": PLANTED_OVERLAP, "target_group": "women", "toxicity_human": 4.0})
    _write_jsonl(root / "probe/toxigen_annotated.jsonl", probe, compress=False)
    _write_jsonl(root / "toxic/civil_comments_toxic_spans.jsonl.gz",
                 [{"comment_id": i, "text": _post(rng)} for i in range(80)], compress=True)
    return root


@pytest.fixture(scope="module")
def judge_env(tmp_path_factory):
    """Data folder and cache for this module; the tiny judge is trained once (a few seconds)."""
    root = make_judge_data(tmp_path_factory.mktemp("judge-data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOXLAB_DATA", str(root))
        mp.setenv("TOXLAB_CACHE", str(tmp_path_factory.mktemp("judge-cache")))
        entry = judging.judge(TINY_JUDGE, progress=False)
        yield {"root": root, "entry": entry, "judge": judging.load_judge(TINY_JUDGE, progress=False),
               "data": corpus.training_set(TINY_JUDGE, root)}


# ------------------------------------------------------------------------------------------ configuration
@pytest.mark.parametrize("changes, expect", [
    ({"sources": ("davidson", "reddit")}, "must name distinct sources"),
    ({"sources": ()}, "must name distinct sources"),
    ({"max_per_class": 5}, "at least 10"),
    ({"max_tokens": 4}, r"\[8, 512\]"),
    ({"l2_grid": ()}, "positive numbers"),
    ({"l2_grid": (1.0, -1.0)}, "positive numbers"),
    ({"val_fraction": 0.6}, r"\(0, 0.5\)"),
    ({"max_per_class": True}, "should be a int"),
    ({"seed": 1.5}, "should be a int"),
    ({"weighting": "inverse"}, "'stratum' or 'none'"),
    ({"toxic_shares": (0.5, 1.0)}, r"\(0, 1\)"),
    ({"toxic_shares": ()}, r"\(0, 1\)"),
    ({"max_val_false_positives": 2.0}, r"\[0, 1\]"),
    ({"shuffled_share": 1.5}, r"\[0, 1\]"),
    ({"shuffled_toxic_share": -0.1}, r"shuffled_toxic_share.*\[0, 1\]"),
    ({"tune_layers": 7}, r"\[0, 6\]"),
    ({"tune_epochs": 0}, "must be >= 1"),
    ({"tune_lr": 0.0}, "positive"),
    ({"tune_layers": 1, "weighting": "none"}, "needs weighting='stratum'"),
])
def test_judge_config_is_validated(changes, expect):
    with pytest.raises(ConfigError, match=expect):
        corpus.JudgeConfig(**changes)


def test_judge_config_levels_and_overrides():
    assert corpus.judge_config("smoke").max_per_class < corpus.judge_config("cpu").max_per_class
    assert corpus.judge_config("smoke", {"max_tokens": 40}).max_tokens == 40
    assert corpus.JudgeConfig(sources=["civil", "c4"], l2_grid=[1]).l2_grid == (1.0,)  # lists from JSON
    with pytest.raises(ConfigError, match="unknown level"):
        corpus.judge_config("huge")
    with pytest.raises(ConfigError, match="unknown judge setting"):
        corpus.judge_config("smoke", {"speed": 3})
    assert "toxigen_annotated" in corpus.files_read(corpus.JudgeConfig(sources=("civil", "c4")))


# ------------------------------------------------------------------------------------------ training data
def test_training_set_is_disjoint_from_the_probe_statements(judge_env):
    data = judge_env["data"]
    probe = {corpus.normalise(t) for t in (json.loads(line)["text"] for line in
                                           (judge_env["root"] / "probe/toxigen_annotated.jsonl").open())}
    assert not probe & {corpus.normalise(t) for t in data.texts}
    assert data.overlap_dropped >= 1  # the planted copy, in capitals and with extra spaces
    davidson_toxic = next(r for r in data.counts if (r["source"], r["label"]) == ("davidson", 1))
    assert davidson_toxic["overlap_dropped"] == 1
    assert len({corpus.normalise(t) for t in data.texts}) == len(data.texts)  # no duplicates across splits


def test_training_set_labels_splits_and_caps(judge_env):
    data = judge_env["data"]
    kept = {(r["source"], r["label"]): r for r in data.counts}
    assert set(kept) == {("jigsaw", 1), ("jigsaw", 0), ("davidson", 1), ("davidson", 0), ("stormfront", 1),
                         ("stormfront", 0), ("toxigen_prompts", 1), ("toxigen_prompts", 0), ("civil", 1),
                         ("wikinews", 0), ("c4", 0), ("shuffled", 1), ("shuffled", 0)}
    for row in data.counts:
        if row["source"] == "shuffled":
            continue
        assert row["kept"] == min(TINY_JUDGE.max_per_class, row["read"] - row["overlap_dropped"]
                                  - row["duplicates_dropped"])
        assert row["train"] + row["val"] + row["test"] == row["kept"]
        members = (data.sources == row["source"]) & (data.labels == row["label"])
        assert (data.splits[members] == "test").sum() == row["test"]
    stormfront = kept[("stormfront", 1)]["read"] + kept[("stormfront", 0)]["read"]
    assert stormfront == 60  # relation and idk/skip dropped
    assert not any("&amp;" in t for t in data.texts)  # HTML entities in tweets are unescaped


def test_shuffled_copies_keep_words_and_split_and_only_lexical_toxicity(judge_env):
    """Every shuffled copy is a permutation of the words of one kept text, in that text's split; a benign
    text's copy is benign, a toxic text's copy is toxic exactly when it holds a word of C4's list."""
    data = judge_env["data"]
    words, phrases = corpus.c4_list(judge_env["root"])
    originals = {}
    for text, label, source, split in zip(data.texts, data.labels.tolist(), data.sources.tolist(),
                                          data.splits.tolist()):
        if source != corpus.SHUFFLED:
            originals.setdefault(tuple(sorted(text.split())), []).append((label, split))
    copies = np.flatnonzero(data.sources == corpus.SHUFFLED)
    assert len(copies) > 0 and {0, 1} <= set(data.labels[copies].tolist())
    from_toxic_benign = 0
    for i in copies:
        found = originals[tuple(sorted(data.texts[i].split()))]
        assert data.splits[i] in {split for _, split in found}
        listed = filters.holds_listed(data.texts[i], words, phrases)
        if data.labels[i] == 1:
            assert listed and 1 in {label for label, _ in found}
        elif {label for label, _ in found} == {1}:
            assert not listed
            from_toxic_benign += 1
    assert from_toxic_benign > 0  # the fixture's toxic texts without a listed word give benign copies
    none = corpus.training_set(dataclasses.replace(TINY_JUDGE, shuffled_share=0.0, shuffled_toxic_share=0.0),
                               judge_env["root"])
    assert corpus.SHUFFLED not in set(none.sources.tolist())
    words = "a b c d e f".split()
    assert sorted(corpus.shuffle_words(" ".join(words), np.random.default_rng(0)).split()) == words


def test_training_set_is_fixed_by_its_seed(judge_env):
    root = judge_env["root"]
    again = corpus.training_set(TINY_JUDGE, root)
    assert corpus.data_digest(again) == corpus.data_digest(judge_env["data"])
    other = corpus.training_set(corpus.JudgeConfig(max_per_class=20, seed=1), root)
    assert corpus.data_digest(other) != corpus.data_digest(judge_env["data"])


def test_too_few_examples_is_a_data_error(judge_env):
    with pytest.raises(DataError, match="lacks toxic or benign"):
        corpus.training_set(corpus.JudgeConfig(sources=("civil",)), judge_env["root"])


# ------------------------------------------------------------------------------------------ the head
def test_stratum_weights_give_every_source_and_label_the_same_total():
    sources = np.array(["a", "a", "a", "b", "b", "a"])
    labels = np.array([1, 1, 1, 1, 0, 0])
    w = minilm.stratum_weights(sources, labels)
    totals = [w[(sources == s) & (labels == y)].sum() for s, y in [("a", 1), ("a", 0), ("b", 1), ("b", 0)]]
    assert np.allclose(totals, 1.5) and w.mean() == pytest.approx(1.0)


def test_toxic_share_sets_the_prior():
    sources = np.array(["a", "a", "a", "b", "b", "a"])
    labels = np.array([1, 1, 1, 1, 0, 0])
    w = minilm.stratum_weights(sources, labels, toxic_share=0.25)
    assert w[labels == 1].sum() / w.sum() == pytest.approx(0.25) and w.mean() == pytest.approx(1.0)
    assert w[(sources == "a") & (labels == 1)].sum() == pytest.approx(w[(sources == "b") & (labels == 1)].sum())
    with pytest.raises(DataError):
        minilm.stratum_weights(sources, np.ones(6, dtype=int), toxic_share=0.5)


def test_head_is_the_probe_solver_with_weights():
    """The judge's head is toxlab.interp.probe's solver: with weights k it equals the fit on rows duplicated k times."""
    import torch

    from toxlab.interp.probe import logistic_newton, with_intercept
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 5))
    y = (x[:, 0] + 0.5 * rng.standard_normal(200) > 0).astype(np.float64)
    k = np.r_[np.full(50, 2.0), np.ones(150)]
    weight, bias, _, _ = minilm.fit_head(x, y, x, y, (1.0,), weights=k)
    twice, _ = logistic_newton(with_intercept(torch.from_numpy(np.concatenate([x, x[:50]])).unsqueeze(1)),
                               torch.from_numpy(np.concatenate([y, y[:50]])), 1.0, gtol=1e-10)
    assert np.allclose(np.r_[weight, bias], twice[0].numpy(), atol=1e-6)
    assert not hasattr(minilm, "weighted_logistic")  # one solver in the package


def test_fit_head_keeps_the_lowest_validation_loss():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 4))
    y = (x[:, 0] > 0).astype(np.float64)
    weight, bias, l2, search = minilm.fit_head(x[:200], y[:200], x[200:], y[200:], (0.01, 1.0, 100.0))
    assert [r["l2"] for r in search] == [0.01, 1.0, 100.0]
    assert l2 == min(search, key=lambda r: r["val_log_loss"])["l2"] and weight.shape == (4,)


# ------------------------------------------------------------------------------------------ the judge
def test_judge_ranks_planted_toxic_text_above_benign(judge_env):
    from sklearn.metrics import roc_auc_score
    texts, labels, _ = judge_env["data"].split("test")
    scores = judge_env["judge"].score(texts)
    assert scores.shape == (len(texts),) and np.all((scores >= 0) & (scores <= 1))
    assert roc_auc_score(labels, scores) > 0.9
    assert judge_env["judge"].score([]).shape == (0,)


def test_scores_are_reproducible(judge_env):
    texts, _, _ = judge_env["data"].split("test")
    judge = judge_env["judge"]
    assert np.array_equal(judge.score(texts), judge.score(texts))
    retrained = minilm.train(TINY_JUDGE, judge_env["root"]).judge
    assert np.array_equal(retrained.weight, judge.weight) and retrained.bias == judge.bias
    assert np.array_equal(retrained.score(texts), judge.score(texts))


def test_save_and_load_give_identical_scores(judge_env, tmp_path):
    judge = judge_env["judge"]
    judge.save(tmp_path / "j")
    loaded = minilm.MiniLMJudge.load(tmp_path / "j")
    texts = ["The museum restored the old library.", "you absolute turnip, what a soggy biscuit"]
    assert np.array_equal(loaded.score(texts), judge.score(texts))
    assert loaded.version == judge.version == judge_env["entry"].key and loaded.l2 in TINY_JUDGE.l2_grid
    meta = json.loads((tmp_path / "j" / "judge.json").read_text())
    (tmp_path / "j" / "judge.json").write_text(json.dumps({**meta, "encoder_sha256": "0" * 64}))
    with pytest.raises(JudgeUnavailableError, match="other MiniLM weights"):
        minilm.MiniLMJudge.load(tmp_path / "j")
    with pytest.raises(JudgeUnavailableError, match="no readable judge"):
        minilm.MiniLMJudge.load(tmp_path / "absent")


def test_stage_is_cached_and_records_training(judge_env, monkeypatch):
    monkeypatch.setattr(minilm, "train", lambda *a, **k: pytest.fail("trained again"))
    entry = judging.judge(TINY_JUDGE, progress=False)
    assert entry.key == judge_env["entry"].key
    report = entry.json("training.json")
    assert report["n_train"] == int((judge_env["data"].splits == "train").sum())
    assert report["data_sha256"] == corpus.data_digest(judge_env["data"])
    assert {r["l2"] for r in report["l2_search"]} == set(TINY_JUDGE.l2_grid)
    assert entry.manifest["seed"] == TINY_JUDGE.seed
    # The prior: the largest candidate toxic share whose head flags few enough benign validation texts.
    search = report["prior_search"]
    assert [r["toxic_share"] for r in search] == list(TINY_JUDGE.toxic_shares)
    within = [r["toxic_share"] for r in search if r["max_val_false_positives"] <= TINY_JUDGE.max_val_false_positives]
    fewest = min(search, key=lambda r: r["max_val_false_positives"])["toxic_share"]
    assert report["toxic_share"] == (within[0] if within else fewest)


def test_default_judge_is_the_trained_minilm(monkeypatch):
    monkeypatch.setattr(judging, "load_judge", lambda level, progress=True: ("minilm", level))
    assert judging.default_judge() == ("minilm", "cpu")
    assert judging.default_judge("smoke") == ("minilm", "smoke")
    assert lexical.ProfanityCheckJudge().name == "alt-profanity-check"  # chapter 3's judge


TUNED_JUDGE = dataclasses.replace(TINY_JUDGE, tune_layers=1, tune_epochs=2, tune_lr=1e-4, tune_batch_size=16)


@pytest.fixture(scope="module")
def tuned(judge_env, tmp_path_factory):
    """The tiny judge with MiniLM's top layer tuned (a few seconds), and the frozen judge's scores first."""
    texts = judge_env["data"].split("test")[0]
    frozen_before = judge_env["judge"].score(texts)
    trained = minilm.train(TUNED_JUDGE, judge_env["root"])
    return {"trained": trained, "texts": texts, "frozen_before": frozen_before}


def test_tuned_judge_ranks_planted_toxic_text_and_keeps_only_its_top_layer(judge_env, tuned):
    from sklearn.metrics import roc_auc_score
    judge, report = tuned["trained"].judge, tuned["trained"].report
    texts, labels, _ = judge_env["data"].split("test")
    assert roc_auc_score(labels, judge.score(texts)) > 0.9
    assert judge.tuned and all(name.startswith("encoder.layer.5.") for name in judge.tuned)
    base = encoder.encoder_model("cpu").state_dict()
    assert set(judge.tuned) == {n for n in base if n.startswith("encoder.layer.5.")}
    assert any(not np.array_equal(v, base[n].numpy()) for n, v in judge.tuned.items())  # training moved them
    # The shared frozen encoder is untouched: the frozen judge scores as before.
    assert np.array_equal(judge_env["judge"].score(texts), tuned["frozen_before"])
    tuning = report["tuning"]
    assert tuning["layers"] == 1 and [e["epoch"] for e in tuning["epochs"]] == [1, 2]
    assert tuning["after"]["val_log_loss"] < tuning["before"]["val_log_loss"]
    # The prior: the largest candidate share whose shifted head flags few enough benign validation texts.
    search = tuning["prior_search"]
    assert [r["toxic_share"] for r in search] == list(TUNED_JUDGE.toxic_shares)
    within = [r for r in search if r["max_val_false_positives"] <= TUNED_JUDGE.max_val_false_positives]
    chosen = within[0] if within else min(search, key=lambda r: r["max_val_false_positives"])
    assert report["toxic_share"] == tuning["toxic_share"] == chosen["toxic_share"]
    shift = np.log(chosen["toxic_share"] / (1 - chosen["toxic_share"])) - np.log(0.5 / 0.5)
    assert chosen["shift"] == pytest.approx(shift)


def test_tuned_judge_is_reproducible_and_saved_whole(judge_env, tuned, tmp_path):
    judge, texts = tuned["trained"].judge, tuned["texts"]
    again = minilm.train(TUNED_JUDGE, judge_env["root"]).judge
    assert np.allclose(again.score(texts), judge.score(texts), atol=1e-6)
    judge.save(tmp_path / "j")
    loaded = minilm.MiniLMJudge.load(tmp_path / "j")
    assert np.array_equal(loaded.score(texts), judge.score(texts))
    assert loaded.tuned.keys() == judge.tuned.keys()
    with pytest.raises(JudgeUnavailableError, match="tensors the installed MiniLM lacks"):
        minilm.tuned_encoder({"encoder.layer.9.output.dense.weight": np.zeros(1)}, "cpu")


# ------------------------------------------------------------------------------------------ card measures
def test_ece_on_a_hand_computed_example():
    scores = np.array([0.05, 0.15, 0.15, 0.95])
    labels = np.array([0, 0, 1, 1])
    # bins: [0, .1) |0 - .05| x 1/4; [.1, .2) |.5 - .15| x 2/4; [.9, 1] |1 - .95| x 1/4
    assert cards.expected_calibration_error(scores, labels) == pytest.approx(0.0125 + 0.175 + 0.0125)
    assert cards.expected_calibration_error(np.array([0.0, 1.0]), np.array([0, 1])) == 0.0
    assert cards.bin_index(np.array([0.0, 0.1, 0.999, 1.0])).tolist() == [0, 1, 9, 9]
    curve = cards.reliability_curve(scores, labels)
    assert [(r["lower"], r["count"], r["toxic_share"]) for r in curve] == [(0.0, 1, 0.0), (0.1, 2, 0.5),
                                                                           (0.9, 1, 1.0)]


def test_metrics_with_one_class_have_no_auc():
    row = cards.metrics(np.array([0.2, 0.7]), np.array([1, 1]))
    assert row["auc"] is None and row["accuracy"] == 0.5 and row["flagged"] == 0.5
    assert cards.metrics(np.array([0.2, 0.7]), np.array([0, 1]))["auc"] == 1.0


def test_failure_mode_texts():
    identity, control = cards.template_sentences(cards.IDENTITY_PEOPLE), cards.template_sentences(cards.CONTROL_PEOPLE)
    assert len(identity) == len(control) == len(cards.TEMPLATES) * len(cards.IDENTITY_PEOPLE)
    assert "My neighbour is a Muslim woman who teaches maths." in identity
    rng = np.random.default_rng(0)
    noise = cards.random_byte_texts(5, rng)
    assert all(isinstance(t, str) and t for t in noise)
    vocabulary, freq = ["the", "of", "council", "river"], np.array([4.0, 3.0, 2.0, 1.0])
    repeated = cards.repetitive_texts(4, rng, vocabulary)
    assert len(set(repeated[0].split())) == 1 and len(repeated[0].split()) >= 10
    salad = cards.word_salad(3, np.random.default_rng(1), vocabulary, freq)
    assert salad == cards.word_salad(3, np.random.default_rng(1), vocabulary, freq)
    assert all(set(t.split()) <= set(vocabulary) and len(t.split()) == 20 for t in salad)
    with pytest.raises(ConfigError):
        cards.CardConfig(n_gibberish=0)


def test_salad_without_listed_words():
    """C4's filter matches whole words and phrases, case folded; salads kept to no listed word hold none, and
    only the listed words are removed from the vocabulary."""
    words, phrases = filters.listed_words(["Turnip", "soggy  biscuit", ""])
    assert words == {"turnip"} and phrases == ("soggy biscuit",)
    assert filters.holds_listed("what a TURNIP!", words, phrases)
    assert not filters.holds_listed("turnips grow", words, phrases)
    assert filters.holds_listed("a soggy biscuit", words, phrases) and not filters.holds_listed("soggy cake", words,
                                                                                            phrases)
    vocab, freq = cards.vocabulary(["turnip soggy biscuit turnip the the the of river"])
    assert vocab[0] == "the" and freq[0] == 3.0
    salads = cards.clean_salad(50, np.random.default_rng(0), vocab, freq, words, phrases, length=6)
    assert len(salads) == 50 and not any(filters.holds_listed(t, words, phrases) for t in salads)
    assert {w for t in salads for w in t.split()} == set(vocab) - {"turnip"}


def test_card_on_fixture_data_holds_numbers_only(judge_env):
    # A fast stand-in for the MiniLM judge: the card's plumbing, not the encoder, is under test here.
    card = cards.build_card({"minilm": FakeJudge(), "alt-profanity-check": lexical.ProfanityCheckJudge(),
                             "hatesonar": "hatesonar is not installed; install it"},
                            judge_env["data"], cards.CardConfig(ood_max=30, n_gibberish=5, n_web=5, n_salad=5,
                                                                vocab_docs=20), judge_env["root"])
    assert card["judges"]["hatesonar"] == {"available": False, "why": "hatesonar is not installed; install it"}
    sets = {(r["set"], r["judge"]) for r in card["validation"]}
    assert ("ToxiGen (out of domain)", "minilm") in sets and ("test: all", "alt-profanity-check") in sets
    assert not any(j == "hatesonar" for _, j in sets)
    probes = {r["probe"] for r in card["failure_modes"]}
    assert {"identity templates (benign)", "random bytes", "repetition", "word salad",
            "implicit hate (recall)"} <= probes
    registers = {r["register"] for r in card["registers"] if r["judge"] == "minilm"}
    assert {"talk comments", "tweets", "forum sentences", "news", cards.TOXIGEN_BENIGN} <= registers
    assert {r["source"] for r in card["web"]} == set(cards.WEB_SOURCES)
    salads = {(r["source"], r["kind"]) for r in card["salad"] if r["judge"] == "minilm"}
    assert salads == {(s, k) for s in cards.CLEAN_SALAD + cards.TOXIC_SALAD for k in cards.SALAD_KINDS}
    listed = {r["source"]: r["listed_share"] for r in card["salad"] if r["kind"] == cards.SALAD_KINDS[0]}
    assert listed["wikinews"] == 0.0 and listed["pol"] > 0  # the fixture's posts hold the stand-in list's words
    checks = card_reading.targets(card)
    assert {t.name for t in checks} >= {"ROC-AUC, ToxiGen human annotations", "ROC-AUC, held-out Jigsaw talk comments",
                                        "false positives: talk comments"}
    assert all(t.met == (t.value <= t.bound if t.at_most else t.value >= t.bound) for t in checks)
    assert set(card_reading.salad_gaps(card)) == set(cards.FORUMS)
    # The register bound holds the forums not collected for their toxicity; the toxic ones are reported.
    salad_targets = [t.name for t in checks if "salad" in t.name]
    assert salad_targets == [f"{f} salad (no C4-list word) minus news salad, mean score" for f in cards.REGISTER_FORUMS]
    assert not set(cards.REGISTER_FORUMS) & set(cards.TOXIC_FORUMS)
    assert set(cards.REGISTER_FORUMS) <= set(cards.CLEAN_SALAD + cards.TOXIC_SALAD)
    assert card["sizes"]["ood"] <= 31
    blob = json.dumps(card)
    assert not any(t in blob for t in judge_env["data"].texts + RUDE)  # no scored text in the card
    text = card_reading.format_card({**card, "level": "fixture", "training": judge_env["entry"].json("training.json")})
    assert "hatesonar: unavailable" in text and "ToxiGen (out of domain)" in text and "target" in text
    card["training"] = judge_env["entry"].json("training.json")
    head = card_reading.headline(card)
    assert "hatesonar could not run here" in head["lexical_missing"].data
    assert 0 <= head["auc_ood"] <= 1 and isinstance(head["n_train"], int)
    assert head["targets_total"] == len(checks) and head["targets_met"] == sum(t.met for t in checks)
    rebuilt = {**card["training"], "train_time_s": 120.0}  # the judge entry rebuilt since the card was made
    assert card_reading.headline(card, rebuilt)["train_minutes"] == 2.0
    assert card_reading.headline(card)["train_minutes"] == card["training"]["train_time_s"] / 60


def test_judge_figures():
    from matplotlib.figure import Figure

    from toxlab.book import plots
    curve = [{"mean_score": 0.1, "toxic_share": 0.2, "count": 5}, {"mean_score": 0.8, "toxic_share": 0.7, "count": 2}]
    fig = plots.reliability_diagram({"a": {"test": curve, "ood": curve}, "b": {"test": curve}}, sets=["test", "ood"])
    assert isinstance(fig, Figure) and [ax.get_title() for ax in fig.axes] == ["test", "ood"]
    rows = [{"probe": "p", "judge": "a", "flagged": 0.3, "mean_score": 0.2},
            {"probe": "q", "judge": "b", "flagged": None, "mean_score": None}]
    assert len(plots.failure_mode_bars(rows).axes) == 1
    assert plots.judge_colors(["b", "a"]) == plots.judge_colors(["a", "b", "a"])


# ------------------------------------------------------------------------------------------ registry
def test_registry_names_and_unknown_judge():
    assert set(judging.JUDGES) == {"minilm", "profanity-check", "hatesonar", "toxigen-roberta", "detoxify",
                                  "perspective"}
    assert isinstance(judging.get_judge("profanity-check"), lexical.ProfanityCheckJudge)
    assert judging.get_judge("toxigen-roberta").model_id == "tomh/toxigen_roberta"  # nothing downloads yet
    assert judging.get_judge("detoxify").model_id == "unitary/toxic-bert"
    with pytest.raises(ConfigError, match="unknown judge 'nope'; choose one of minilm, profanity-check"):
        judging.get_judge("nope")


def test_hatesonar_missing_or_without_locale(monkeypatch):
    import sys
    import types
    monkeypatch.setitem(sys.modules, "hatesonar", None)
    with pytest.raises(JudgeUnavailableError, match=r"not installed; install it with `pip install 'toxlab\[judges\]'`"):
        lexical.HateSonarJudge()

    class NoLocale:
        def __init__(self):
            raise RuntimeError("Failed to construct locale with name:en_US.UTF-8")

    monkeypatch.setitem(sys.modules, "hatesonar", types.SimpleNamespace(Sonar=NoLocale))
    with pytest.raises(JudgeUnavailableError, match="en_US.UTF-8 locale is missing"):
        lexical.HateSonarJudge()

    class FakeSonar:
        def ping(self, text):
            p = 0.9 if "turnip" in text else 0.1
            return {"classes": [{"class_name": "hate_speech", "confidence": p / 2},
                                {"class_name": "offensive_language", "confidence": p / 2},
                                {"class_name": "neither", "confidence": 1 - p}]}

    monkeypatch.setitem(sys.modules, "hatesonar", types.SimpleNamespace(Sonar=FakeSonar))
    assert lexical.HateSonarJudge().score(["turnip", "news"]) == pytest.approx([0.9, 0.1])


# ------------------------------------------------------------------------------------------ online judges
class FakePipeline:
    def __init__(self, outputs):
        self.outputs, self.calls = outputs, []

    def __call__(self, texts, **kwargs):
        self.calls.append((texts, kwargs))
        return self.outputs


def test_pipeline_judges_read_the_toxic_label():
    fake = FakePipeline([[{"label": "LABEL_0", "score": 0.3}, {"label": "LABEL_1", "score": 0.7}],
                         [{"label": "LABEL_1", "score": 0.1}, {"label": "LABEL_0", "score": 0.9}]])
    made = []
    judge = remote.toxigen_roberta_judge(pipeline_factory=lambda model, device: made.append(model) or fake)
    assert judge.score(["a", "b"]) == pytest.approx([0.7, 0.1])
    assert made == ["tomh/toxigen_roberta"]
    texts, kwargs = fake.calls[0]
    assert texts == ["a", "b"] and kwargs["truncation"] is True and kwargs["top_k"] is None
    assert kwargs["function_to_apply"] == "softmax"
    judge.score(["c", "d"])
    assert made == ["tomh/toxigen_roberta"]  # the pipeline is built once

    detox = remote.detoxify_judge(pipeline_factory=lambda m, d: FakePipeline(
        [[{"label": "toxic", "score": 0.8}, {"label": "insult", "score": 0.6}]]))
    assert detox.score(["x"]) == pytest.approx([0.8])
    assert detox._pipe.calls[0][1]["function_to_apply"] == "sigmoid"


def test_pipeline_judge_errors():
    wrong = remote.detoxify_judge(pipeline_factory=lambda m, d: FakePipeline([[{"label": "LABEL_0", "score": 1.0}]]))
    with pytest.raises(ToxlabError, match=r"returned labels \['LABEL_0'\], not 'toxic'"):
        wrong.score(["x"])
    short = remote.detoxify_judge(pipeline_factory=lambda m, d: FakePipeline([]))
    with pytest.raises(ToxlabError, match="returned 0 results for 1 texts"):
        short.score(["x"])

    def offline(model, device):
        raise OSError("We couldn't connect to 'https://huggingface.co'\nmore")

    with pytest.raises(JudgeUnavailableError, match="run it with internet first"):
        remote.toxigen_roberta_judge(pipeline_factory=offline).score(["x"])


class FakeResponse(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _perspective(value):
    summary = {"value": value, "type": "PROBABILITY"}
    return FakeResponse(json.dumps({"attributeScores": {"TOXICITY": {"summaryScore": summary}}}).encode())


def test_perspective_requests_and_responses(monkeypatch):
    monkeypatch.delenv("PERSPECTIVE_API_KEY", raising=False)
    with pytest.raises(JudgeUnavailableError, match="set PERSPECTIVE_API_KEY"):
        judging.get_judge("perspective")
    monkeypatch.setenv("PERSPECTIVE_API_KEY", "k3y")
    assert isinstance(judging.get_judge("perspective"), remote.PerspectiveJudge)

    requests, sleeps, now = [], [], [0.0]

    def urlopen(request, timeout):
        requests.append(request)
        return _perspective(0.25 * len(requests))

    judge = remote.PerspectiveJudge(urlopen=urlopen, sleep=sleeps.append, clock=lambda: now[0], qps=2.0)
    assert judge.score(["first text", "   ", "second text"]) == pytest.approx([0.25, 0.0, 0.5])
    assert len(requests) == 2  # the blank text needs no request
    request = requests[0]
    assert request.get_method() == "POST" and request.full_url.startswith(remote.PerspectiveJudge.URL)
    assert "key=k3y" in request.full_url and request.get_header("Content-type") == "application/json"
    body = json.loads(request.data)
    assert body["comment"]["text"] == "first text" and body["requestedAttributes"] == {"TOXICITY": {}}
    assert sleeps == [0.5]  # paced to 2 requests a second (the fake clock never moves)


def test_perspective_retries_and_errors():
    calls = []

    def busy_then_ok(request, timeout):
        calls.append(1)
        if len(calls) < 3:
            raise urllib.error.HTTPError(request.full_url, 429, "Too Many Requests", {}, None)
        return _perspective(0.9)

    judge = remote.PerspectiveJudge(api_key="k3y", urlopen=busy_then_ok, sleep=lambda s: None)
    assert judge.score(["some text"]) == pytest.approx([0.9]) and len(calls) == 3

    def forbidden(request, timeout):
        raise urllib.error.HTTPError(request.full_url, 403, "Forbidden", {}, None)

    with pytest.raises(JudgeUnavailableError, match="HTTP 403") as err:
        remote.PerspectiveJudge(api_key="k3y", urlopen=forbidden, sleep=lambda s: None).score(["secret text"])
    assert "k3y" not in str(err.value) and "secret" not in str(err.value)

    def offline(request, timeout):
        raise urllib.error.URLError("no route")

    with pytest.raises(JudgeUnavailableError, match="cannot be reached"):
        remote.PerspectiveJudge(api_key="k", urlopen=offline, sleep=lambda s: None).score(["t"])
    with pytest.raises(ToxlabError, match="no TOXICITY summary score"):
        remote.PerspectiveJudge(api_key="k", urlopen=lambda r, timeout: FakeResponse(b"{}"),
                                sleep=lambda s: None).score(["t"])
    with pytest.raises(ToxlabError, match="not JSON"):
        remote.PerspectiveJudge(api_key="k", urlopen=lambda r, timeout: FakeResponse(b"<html>"),
                                sleep=lambda s: None).score(["t"])


# ------------------------------------------------------------------------------------------ command line
class FakeJudge:
    name = "fake"

    def score(self, texts):
        return np.array([len(t) / 100 for t in texts])


@pytest.fixture
def fake_judge(monkeypatch):
    monkeypatch.setattr(judging, "get_judge", lambda name, level="cpu", progress=True: FakeJudge())


def _score(argv, capsys):
    code = main(["judge", "score", *argv])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out


def test_cli_scores_jsonl_in_input_order(tmp_path, capsys, fake_judge):
    path = tmp_path / "in.jsonl"
    texts = ["a" * 30, "b" * 10, "c" * 20]
    path.write_text("\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(texts)) + "\n\n")
    code, rows, out = _score(["--input", str(path), "--judge", "profanity-check"], capsys)
    assert code == 0 and rows == [{"toxicity": 0.3}, {"toxicity": 0.1}, {"toxicity": 0.2}]
    assert not any(t in out.out + out.err for t in texts)  # texts are never printed


def test_cli_scores_plain_text_and_stdin(tmp_path, capsys, fake_judge, monkeypatch):
    path = tmp_path / "in.txt"
    path.write_text("aaaa\n\nbb\n")
    code, rows, _ = _score(["--input", str(path)], capsys)
    assert code == 0 and rows == [{"toxicity": 0.04}, {"toxicity": 0.0}, {"toxicity": 0.02}]
    monkeypatch.setattr("sys.stdin", io.StringIO('{"text": "abc"}\n'))
    code, rows, _ = _score(["--input", "-"], capsys)
    assert code == 0 and rows == [{"toxicity": 0.03}]
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert _score(["--input", str(empty)], capsys)[:2] == (0, [])


def test_cli_with_the_minilm_judge_matches_the_judge(judge_env, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(judging, "load_judge", lambda level, progress=True: judge_env["judge"])
    texts = ["The council opened a new bridge.", "you absolute turnip", "Volunteers restored the old library."]
    path = tmp_path / "in.txt"
    path.write_text("\n".join(texts) + "\n")
    code, rows, _ = _score(["--input", str(path), "--judge", "minilm", "--level", "smoke"], capsys)
    assert code == 0
    assert [r["toxicity"] for r in rows] == judge_env["judge"].score(texts).tolist()


def _bad(argv, capsys, expect):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and expect in err, err
    assert "Traceback" not in err
    return err


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys, fake_judge):
    _bad(["judge", "score", "--input", str(tmp_path / "absent.jsonl")], capsys, "cannot read")
    _bad(["judge", "score", "--input", str(tmp_path)], capsys, "cannot read")
    bad_json = tmp_path / "bad.jsonl"
    bad_json.write_text('{"text": "fine"}\n\n{"text": "secret words", \n')
    err = _bad(["judge", "score", "--input", str(bad_json)], capsys, "line 3 is not valid JSON")
    assert "secret" not in err
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text('{"text": "fine"}\n{"body": "secret words"}\n')
    assert "secret" not in _bad(["judge", "score", "--input", str(no_text)], capsys, "line 2 has no string `text`")
    not_string = tmp_path / "number.jsonl"
    not_string.write_text('{"text": 3}\n')
    _bad(["judge", "score", "--input", str(not_string)], capsys, "line 1 has no string `text`")
    binary = tmp_path / "latin1.txt"
    binary.write_bytes("caf\xe9\n".encode("latin-1"))
    _bad(["judge", "score", "--input", str(binary)], capsys, "is not UTF-8")
    _bad(["judge", "score"], capsys, "--input")
    _bad(["judge"], capsys, "required")


def test_cli_unknown_judge_and_level(tmp_path, capsys):
    path = tmp_path / "in.txt"
    path.write_text("hello\n")
    _bad(["judge", "score", "--input", str(path), "--judge", "oracle"], capsys, "unknown judge 'oracle'")
    _bad(["judge", "score", "--input", str(path), "--judge", "minilm", "--level", "huge"], capsys, "unknown level")
    _bad(["judge", "card", "--level", "huge"], capsys, "unknown level")


def test_salads_without_profane_words_hold_no_word_either_lexicon_flags(judge_env):
    """The card's third salad kind: no word of C4's list and no word the profanity judge flags on its own."""
    _, salads, _, _ = cards.register_sets(cards.CardConfig(n_web=5, n_salad=5, vocab_docs=20), judge_env["root"])
    words, phrases = corpus.c4_list(judge_env["root"])
    kept = [t for key, texts in salads.items() if key.endswith(f"| {cards.SALAD_KINDS[2]}") for t in texts]
    assert kept
    assert not any(filters.holds_listed(t, words, phrases) for t in kept)
    vocabulary = sorted({w for t in kept for w in t.split()})
    assert not cards.profane_words(vocabulary)
    planted = ["harvest", "council", "idiot"]
    assert "idiot" in cards.profane_words(planted) and "harvest" not in cards.profane_words(planted)
