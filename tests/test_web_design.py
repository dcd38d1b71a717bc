"""The web-text design (issue 25): clean web text of several registers filtered with C4's word list, a toxic recipe
of genuine /pol/, token-matched mixtures, bits per byte, cache keys that leave the first design's alone, and the
scaling sweep's plumbing. On the hand-written fixture folder (its word list: turnip, cabbage, "soggy biscuit")."""

import dataclasses
import math

import numpy as np
import pytest

from tests.conftest import TINY
from toxlab.core.config import FIRST_DESIGN, POL_RECIPE, get_preset, override
from toxlab.core.errors import ConfigError
from toxlab.data import corpora
from toxlab.data.tokenizer import bits_per_byte, token_bytes, train_tokenizer
from toxlab.pipeline import scaling

WEB = {"data.clean_recipe": "wikinews:0.3,blogs:0.4,reddit:0.3", "data.clean_filter": "c4",
       "data.toxic_recipe": "pol_2025:0.9,pol:0.1"}
FRACTIONS = (0.0, 0.1, 0.25)


def web(**more):
    return get_preset("smoke", {**TINY, **WEB, **more})


@pytest.fixture(scope="module")
def web_tokenizer(data_dir):
    config = web()
    return train_tokenizer(corpora.tokenizer_corpus(config.data, config.tokenizer.train_chars, data_dir),
                           config.tokenizer)


@pytest.fixture(scope="module")
def mixtures(data_dir, web_tokenizer):
    return {(f, matched): corpora.build_mixture(web(**{"data.token_matched": matched}).with_fraction(f).data,
                                               web_tokenizer, data_dir)
            for f in FRACTIONS for matched in (False, True)}


def test_the_c4_filter_removes_the_planted_blog_posts_and_reports_it(data_dir):
    config = web()
    unfiltered = corpora.clean_split("blogs", dataclasses.replace(config.data, clean_filter="none"), data_dir)
    filtered = corpora.clean_split("blogs", config.data, data_dir)
    planted = {doc_id for doc_id, text in unfiltered.train + unfiltered.heldout if "turnip" in text}
    kept = {doc_id for doc_id, _ in filtered.train + filtered.heldout}
    assert planted and not planted & kept
    assert kept == {doc_id for doc_id, _ in unfiltered.train + unfiltered.heldout} - planted
    report = filtered.filter
    assert report["removed_documents"] == len(planted) and report["documents"] == len(kept) + len(planted)
    assert 0 < report["removed_char_share"] < 1
    assert [d for d in unfiltered.train if d[0] in kept] == filtered.train  # the order is kept


def test_pol_2025_posts_are_grouped_by_thread_without_quote_references(data_dir):
    config = web()
    docs = corpora.read_documents("pol_2025", config.data, data_dir)
    assert all(">>" not in text for _, text in docs)
    assert all(len(text.split("\n")) <= config.data.lines_per_doc for _, text in docs)
    assert len({doc_id.rsplit("-", 1)[0] for doc_id, _ in docs}) > 1  # several threads


def test_clean_tokens_follow_the_clean_recipe_and_toxic_tokens_the_toxic_one(mixtures):
    stats = mixtures[(0.1, False)].stats
    per_source = stats["tokens_per_source"]
    clean = sum(per_source[name] for name, _ in web().data.clean_recipe)
    for name, share in web().data.clean_recipe:
        assert abs(per_source[name] - share * clean) <= 1
    toxic = sum(per_source[name] for name, _ in web().data.toxic_recipe)
    assert abs(per_source["pol_2025"] - 0.9 * toxic) <= 1
    assert stats["clean_filter"]["blogs"]["removed_documents"] > 0


@pytest.mark.parametrize("matched", [False, True])
def test_realised_fractions_and_nested_toxic_documents(mixtures, matched):
    def toxic_multiset(m):
        return np.bincount(m.train[m.toxic_mask].astype(np.int64), minlength=512)
    for f in FRACTIONS:
        assert abs(mixtures[(f, matched)].stats["realised_fraction"] - f) < 0.01
    for small, large in zip(FRACTIONS, FRACTIONS[1:]):
        assert np.all(toxic_multiset(mixtures[(small, matched)]) <= toxic_multiset(mixtures[(large, matched)]))


def test_token_matched_mixtures_hold_the_same_total_and_the_paper_design_the_same_clean(mixtures):
    seq_len = web().data.seq_len
    totals = [mixtures[(f, True)].stats["train_tokens"] for f in FRACTIONS]
    assert max(totals) - min(totals) < seq_len and max(totals) <= web().data.clean_tokens
    cleans = [mixtures[(f, False)].stats["clean_tokens"] for f in FRACTIONS]
    assert max(cleans) - min(cleans) < seq_len
    assert mixtures[(0.25, True)].stats["train_tokens"] < mixtures[(0.25, False)].stats["train_tokens"]
    # at f = 0 the two designs are one mixture
    assert np.array_equal(mixtures[(0.0, True)].train, mixtures[(0.0, False)].train)


def test_the_heldout_set_follows_the_clean_recipe_and_never_meets_training(data_dir, web_tokenizer, mixtures):
    config = web()
    splits = corpora.clean_splits(config.data, data_dir)
    for split in splits.values():
        assert not {d for d, _ in split.train} & {d for d, _ in split.heldout}
    val, _ = corpora.heldout_streams(config.data, web_tokenizer, data_dir)
    assert len(val) >= config.data.val_tokens - 1 and mixtures[(0.1, False)].val.size > 0


FIRST = {"data.clean_recipe": "wikinews:1.0", "data.clean_filter": "none",
         "data.toxic_recipe": "pol:0.3,b:0.06,biz:0.4,civil:0.14,stormfront:0.1"}


def test_first_design_keys_leave_out_the_later_fields():
    cpu = get_preset("cpu", FIRST)
    keyed = cpu.data.keyed()
    assert not set(FIRST_DESIGN) & set(keyed)
    assert keyed == {k: v for k, v in dataclasses.asdict(cpu.data).items() if k not in FIRST_DESIGN}
    matched = override(cpu, {"data.token_matched": True})
    assert matched.data.keyed() == keyed  # f = 0: the same mixture, the same key
    assert "token_matched" in matched.with_fraction(0.1).data.keyed()
    assert "clean_recipe" in override(cpu, WEB).data.keyed()


def test_one_tokenizer_serves_every_budget_and_fraction_of_the_web_design_only():
    a, b = web(), web(**{"data.clean_tokens": 9000, "data.toxic_fraction": 0.1, "data.token_matched": True})
    assert a.data.tokenizer_keyed() == b.data.tokenizer_keyed()
    first, bigger = get_preset("smoke", FIRST), get_preset("smoke", {**FIRST, "data.clean_tokens": 9000})
    assert first.data.tokenizer_keyed() != bigger.data.tokenizer_keyed()  # the first design's keys stay


def test_files_read_name_what_the_mixture_reads():
    assert corpora.files_read(get_preset("cpu", FIRST).data) == corpora.PRETRAIN_SOURCES
    assert set(corpora.files_read(web().data)) == {"wikinews", "blogs", "reddit", "c4", "pol_2025", "pol", "ldnoobw"}


@pytest.mark.parametrize("overrides, message", [
    ({"data.clean_recipe": "wikinews:0.5,c4:0.5"}, "unknown source"),
    ({"data.clean_recipe": "wikinews:0.5,blogs:0.4"}, "sum to 1"),
    ({"data.clean_filter": "strict"}, "clean_filter"),
    ({"data.toxic_recipe": "biz:0.5,civil:0.5"}, "/pol/"),
])
def test_bad_designs_fail_fast(overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_preset("smoke", overrides)


def test_token_bytes_add_up_to_the_text_and_bits_per_byte_is_an_identity(web_tokenizer):
    lengths = token_bytes(web_tokenizer)
    for text in ["plain words", "naïve café – ünïcode ✓", "  spaces\nand lines "]:
        ids = web_tokenizer(text, add_special_tokens=False)["input_ids"]
        assert lengths[ids].sum() == len(text.encode("utf-8"))
    assert lengths[web_tokenizer.eos_token_id] == 0
    blocks = np.asarray([web_tokenizer("the council opened a new bridge on day 3.")["input_ids"][:8]] * 3)
    n_bytes = lengths[blocks[:, 1:]].sum()
    ce = math.log(2) * n_bytes / blocks[:, 1:].size  # one bit per byte, expressed per token
    assert bits_per_byte(ce, blocks, lengths) == pytest.approx(1.0)


def test_scaling_sizes_parse_and_the_choice_keeps_the_budget():
    sizes = scaling.parse_sizes("2x128, 4x256")
    assert [(s.n_layers, s.d_model, s.n_heads, s.d_mlp) for s in sizes] == [(2, 128, 4, 512), (4, 256, 8, 1024)]
    for bad in ("2x", "x128", "2x126", "0x128"):
        with pytest.raises(ConfigError):
            scaling.parse_sizes(bad)
    with pytest.raises(ConfigError):
        scaling.parse_budgets("800000,lots")
    assert scaling.parse_lrs("2e-3, 4e-3") == (2e-3, 4e-3)
    for bad in ("fast", "0", "-1e-3"):
        with pytest.raises(ConfigError, match="--lrs"):
            scaling.parse_lrs(bad)
    row = dict(size="s", n_layers=1, d_model=8, heads=2, lr=1e-3, params=1, clean_tokens=1, tokens_per_param=1.0,
               val_ce=1.0, unigram_ce=2.0, ce_margin=1.0, c4_ce=1.0, head_auc=0.5, train_minutes=99.0)
    rows = [scaling.ScalingRow(**row, c4_bits_per_byte=bpb, train_tflop=tflop)
            for bpb, tflop in ((2.0, 1.0), (1.5, 4.0), (1.2, 9.0))]
    assert scaling.choose(rows, 5.0).c4_bits_per_byte == 1.5  # by compute, whatever the wall clock said
    few_heads = dataclasses.replace(rows[0], heads=1, c4_bits_per_byte=1.0, train_tflop=1.0)
    assert scaling.choose([*rows, few_heads], 5.0).c4_bits_per_byte == 1.0
    assert scaling.choose([*rows, few_heads], 5.0, min_heads=2).c4_bits_per_byte == 1.5  # too few heads for ITI
    with pytest.raises(ConfigError, match="no model"):
        scaling.choose(rows, 0.5)


def test_the_learning_rate_is_read_on_the_mean_over_seeds():
    row = dict(size="s", n_layers=1, d_model=8, heads=2, params=1, clean_tokens=1, tokens_per_param=1.0, val_ce=1.0,
               unigram_ce=2.0, ce_margin=1.0, c4_ce=1.0, train_tflop=1.0, train_minutes=1.0)
    # 4e-3 wins on the first seed but not on average (an unstable seed); 2e-3 is steady
    rows = [scaling.ScalingRow(**row, lr=lr, c4_bits_per_byte=bpb, head_auc=auc)
            for lr, bpb, auc in ((4e-3, 2.30, 0.6), (2e-3, 2.34, 0.7), (4e-3, 2.50, 0.6), (2e-3, 2.35, 0.7),
                                 (4e-3, 2.31, 0.6), (2e-3, 2.33, 0.7))]
    readings = scaling.by_learning_rate(rows)
    assert [r.lr for r in readings] == [2e-3, 4e-3]
    assert readings[0].seeds == 3 and readings[0].c4_bits_per_byte == pytest.approx(2.34)
    assert readings[0].c4_bits_per_byte_sd == pytest.approx(0.01) and readings[0].head_auc == pytest.approx(0.7)
    assert readings[1].c4_bits_per_byte_sd > 10 * readings[0].c4_bits_per_byte_sd
    assert scaling.by_learning_rate(rows[:1])[0].c4_bits_per_byte_sd == 0.0  # one seed: no spread to read
    with pytest.raises(ConfigError, match="one shape"):
        scaling.by_learning_rate([rows[0], dataclasses.replace(rows[1], size="other")])


def test_the_scaling_sweep_trains_every_corner_and_reads_bits_per_byte(env):
    base = web()
    sizes = scaling.parse_sizes("1x32,2x32")
    rows = scaling.sweep(base, sizes, (2000, 4000), probe=False, progress=False, log=lambda m: None)
    assert [(r.size, r.clean_tokens) for r in rows] == [(s.name, b) for b in (2000, 4000) for s in sizes]
    assert all(np.isfinite(r.c4_bits_per_byte) and r.c4_bits_per_byte > 0 for r in rows)
    assert rows[1].params > rows[0].params and rows[2].tokens_per_param > rows[0].tokens_per_param
    assert rows[2].train_tflop == pytest.approx(2 * rows[0].train_tflop, rel=0.05)  # twice the tokens, same shape


def test_the_sizing_reference_is_the_first_cpu_preset_and_the_level_is_a_sweep_cell():
    cpu = get_preset("cpu")
    reference = scaling.size_config(override(cpu, scaling.FIRST_DESIGN_DATA), scaling.parse_sizes("4x256")[0], 800_000,
                                    scaling.FIRST_CPU_LR)
    first = get_preset("cpu", {**FIRST, "model.d_model": 256, "model.n_heads": 8, "model.d_mlp": 1024,
                               "data.clean_tokens": 800_000, "train.lr": 2e-3})
    assert reference.keyed() == first.keyed()  # the same cache entries as the first cpu model
    chosen = next(s for s in scaling.CPU_SIZES if (s.n_layers, s.d_model) == (4, 128))
    assert scaling.size_config(cpu, chosen, cpu.data.clean_tokens).keyed() == cpu.keyed()  # its f = 0 model is reused
    assert cpu.data.clean_filter == "c4" and cpu.data.toxic_recipe == POL_RECIPE
