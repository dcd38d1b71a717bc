"""Mixtures: realised fraction, fixed clean tokens, nested toxic documents, recipe shares, held-out split."""

import numpy as np
import pytest

from toxlab.core.config import PAPER_FRACTIONS
from toxlab.core.errors import DataError
from toxlab.data import corpora
from toxlab.data.tokenizer import train_tokenizer


@pytest.fixture(scope="module")
def tokenizer(data_dir):
    from tests.conftest import TINY
    from toxlab.core.config import get_preset
    config = get_preset("smoke", TINY)
    return train_tokenizer(corpora.tokenizer_corpus(config.data, config.tokenizer.train_chars, data_dir),
                           config.tokenizer)


@pytest.fixture(scope="module")
def mixtures(data_dir, tokenizer):
    from tests.conftest import TINY
    from toxlab.core.config import get_preset
    config = get_preset("smoke", TINY)
    return {f: corpora.build_mixture(config.with_fraction(f).data, tokenizer, data_dir) for f in PAPER_FRACTIONS}


@pytest.mark.parametrize("fraction", PAPER_FRACTIONS)
def test_realised_fraction_matches_target(mixtures, fraction):
    stats = mixtures[fraction].stats
    assert abs(stats["realised_fraction"] - fraction) < 0.005
    assert stats["realised_fraction"] == pytest.approx(mixtures[fraction].toxic_mask.mean())


def test_clean_tokens_are_fixed_across_fractions(mixtures):
    clean = [m.stats["clean_tokens"] for m in mixtures.values()]
    seq_len = mixtures[0.0].train.shape[1]
    assert max(clean) - min(clean) < seq_len  # trimmed by less than one block to pack exactly
    assert mixtures[0.0].stats["toxic_tokens"] == 0


def test_toxic_tokens_follow_the_recipe(tiny):
    targets = corpora.recipe_targets(tiny.data, 0.2)
    total = corpora.toxic_token_target(tiny.data, 0.2)
    assert sum(targets.values()) == total == round(0.25 * tiny.data.clean_tokens)
    for name, share in tiny.data.toxic_recipe:
        assert abs(targets[name] - share * total) <= 1


def test_mixtures_are_nested(mixtures):
    # The toxic tokens of a smaller fraction are a subset of a larger one's (same documents, in order).
    def toxic_multiset(m):
        return np.bincount(m.train[m.toxic_mask].astype(np.int64), minlength=512)
    for small, large in zip(PAPER_FRACTIONS[1:], PAPER_FRACTIONS[2:]):
        assert np.all(toxic_multiset(mixtures[small]) <= toxic_multiset(mixtures[large]))


def test_heldout_split_is_disjoint_and_stable():
    ids = [str(i) for i in range(5000)]
    held = [i for i in ids if corpora.is_heldout(i)]
    assert 0.01 < len(held) / len(ids) < 0.03
    assert held == [i for i in ids if corpora.is_heldout(i)]


def test_validation_sets_are_packed(mixtures):
    m = mixtures[0.1]
    assert m.val.ndim == 2 and m.val.shape[1] == m.train.shape[1] and len(m.val) > 0
    assert m.c4.ndim == 2 and len(m.c4) > 0
    assert m.train.dtype == np.uint16


def test_source_runs_out_clearly(data_dir, tokenizer, tiny):
    from toxlab.core.config import override
    big = override(tiny, {"data.clean_tokens": 10_000_000, "data.toxic_fraction": 0.25}).data
    with pytest.raises(DataError, match="ran out"):
        corpora.build_mixture(big, tokenizer, data_dir)


def test_line_sources_are_grouped_into_documents(data_dir, tiny):
    docs = corpora.read_documents("pol", tiny.data, data_dir)
    assert len(docs) == -(-240 // tiny.data.lines_per_doc)
    assert docs[0][1].count("\n") == tiny.data.lines_per_doc - 1


def test_missing_and_incomplete_data_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("TOXLAB_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="not a folder"):
        corpora.data_root()
    monkeypatch.setenv("TOXLAB_DATA", str(tmp_path))
    with pytest.raises(DataError, match="incomplete: missing clean/wikinews_en.jsonl.gz"):
        corpora.check_layout()


def test_empty_corpus_is_reported(tmp_path, tiny):
    from tests.fixtures.make_data import make_data_dir
    root = make_data_dir(tmp_path)
    import gzip
    with gzip.open(root / "toxic/4chan_b_lines.txt.gz", "wt") as handle:
        handle.write("\n\n")
    with pytest.raises(DataError, match="is empty"):
        corpora.read_documents("b", tiny.data, root)


def test_malformed_json_line_is_reported(tmp_path, tiny):
    from tests.fixtures.make_data import make_data_dir
    root = make_data_dir(tmp_path)
    with open(root / "clean/c4_snippets.jsonl", "a") as handle:
        handle.write("{not json\n")
    with pytest.raises(DataError, match="line 41 is not valid JSON"):
        corpora.read_documents("c4", tiny.data, root)


def test_toxigen_probe_set_threshold_and_ambiguous_rows(tmp_path):
    from tests.fixtures.make_data import make_data_dir
    root = make_data_dir(tmp_path)
    rows = [{"idx": i, "text": f"statement {i}", "target_group": "women", "toxicity_human": score}
            for i, score in enumerate([1.0, 2.9, 3.0, 3.1, 5.0])]
    (root / "probe/toxigen_annotated.jsonl").write_text("\n".join(__import__("json").dumps(r) for r in rows))
    probe = corpora.toxigen_probe_set(root=root)
    assert probe.labels.tolist() == [0, 0, 1, 1] and probe.dropped_ambiguous == 1
    kept = corpora.toxigen_probe_set(keep_ambiguous=True, root=root)
    assert kept.labels.tolist() == [0, 0, 0, 1, 1]


def test_stratified_split_is_four_to_one_per_stratum_and_seeded():
    labels = np.array([0] * 50 + [1] * 25 + [0] * 40 + [1] * 10)
    groups = ["a"] * 75 + ["b"] * 50
    train, val = corpora.stratified_split(labels, groups, seed=0)
    assert len(set(train) & set(val)) == 0 and len(train) + len(val) == len(labels)
    for label in (0, 1):
        for group in ("a", "b"):
            members = [i for i in range(len(labels)) if labels[i] == label and groups[i] == group]
            assert sum(i in set(val) for i in members) == round(0.2 * len(members))
    assert np.array_equal(val, corpora.stratified_split(labels, groups, seed=0)[1])
    assert not np.array_equal(val, corpora.stratified_split(labels, groups, seed=1)[1])
