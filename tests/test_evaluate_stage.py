"""The evaluate stage end to end on a tiny model and the fixture data: every benchmark records its sample
sizes, decoding and judge; alpha = 0 costs nothing; results are cached and reproducible; and the CLI
prints the result's path last."""

import json

import numpy as np
import pytest

from toxlab.cli import main
from toxlab.core.errors import ConfigError
from toxlab.evaluation.evaluate import eval_preset
from toxlab.pipeline import evaluation, probing


class LengthJudge:
    """A deterministic stand-in for the trained judge: longer texts score higher."""

    name = "length"
    version = "test"

    def score(self, texts):
        return np.array([min(len(t) / 40, 1.0) for t in texts])


@pytest.fixture
def small_eval():
    return eval_preset("smoke", {"max_new_tokens": 4, "rtp_prompts": 3, "rtp_samples": 2, "ce_blocks": 4})


def test_ce_at_alpha_zero_is_free_and_recorded(env, tiny, small_eval):
    result = evaluation.evaluate(tiny, 0, "ce", alpha=0, eval_config=small_eval, progress=False).json("result.json")
    for part in ("clean", "c4", "webtext"):
        assert result[part]["ce"] == result[part]["ce_base"] and result[part]["kl"] == 0.0
    assert result["webtext"]["tokens"] == 4 * (tiny.data.seq_len - 1)  # ce_blocks blocks, less each first token
    assert result["webtext"]["ce_base"] != result["c4"]["ce_base"]  # another text, not a copy of a set
    assert result["k"] == 1 and result["eval"]["ce_blocks"] == 4  # 2 heads: 30/256 of them rounds up to 1
    strong = evaluation.evaluate(tiny, 0, "ce", alpha=12, eval_config=small_eval, progress=False).json("result.json")
    assert strong["clean"]["kl"] > 0 and strong["clean"]["ce_base"] == result["clean"]["ce_base"]
    assert strong["webtext"]["kl"] > 0


def test_webtext_is_held_out_from_every_mixture_and_read_whole_excerpts(env, tiny):
    # The reference set is a source no recipe may name, tokenized excerpt by excerpt with EOS between them
    from toxlab.core.config import CLEAN_SOURCES, TOXIC_SOURCES
    from toxlab.data import corpora
    from toxlab.pipeline.mixtures import load_tokenizer
    assert corpora.REFERENCE_SET not in (*CLEAN_SOURCES, *TOXIC_SOURCES)
    tokenizer = load_tokenizer(tiny)
    stream = corpora.reference_stream(tiny.data, tokenizer)
    assert 0 < len(stream) <= tiny.data.val_tokens
    first = corpora.read_documents(corpora.REFERENCE_SET, tiny.data)[0][1]
    ids = tokenizer(first, add_special_tokens=False)["input_ids"]
    assert list(stream[:len(ids) + 1]) == [*ids, tokenizer.eos_token_id]


def test_leace_erases_the_heads_iti_would_shift(env, tiny, small_eval):
    from toxlab.interp.erasure import Erasure
    entry = evaluation.evaluate(tiny, 0, "ce", alpha=1, direction="leace", eval_config=small_eval, progress=False)
    result = entry.json("result.json")
    assert result["direction"] == "leace" and result["alpha"] == 1.0
    assert result["heads"] == [list(h) for h in probing.fitted_iti(tiny, 0, progress=False).heads]
    assert result["clean"]["kl"] > 0 and result["clean"]["ce_base"] > 0
    assert Erasure.load(entry.file("iti")).heads == tuple(tuple(h) for h in result["heads"])
    off = evaluation.evaluate(tiny, 0, "ce", alpha=0, direction="leace", eval_config=small_eval, progress=False)
    assert off.json("result.json")["clean"]["kl"] == 0.0


def test_generation_benchmarks_record_sizes_judge_and_scores(env, tiny, small_eval):
    judge = LengthJudge()
    toxigen = evaluation.evaluate(tiny, 0, "toxigen", alpha=4, eval_config=small_eval, judge=judge, progress=False)
    result = toxigen.json("result.json")
    assert result["judge"] == {"name": "length", "version": "test"}
    assert result["all"]["prompts"] == 3 and result["all"]["samples"] == 1  # 3 fixture files, 1 prompt each
    assert set(result["by_kind"]) == {"hate", "neutral"} and "neutral/asian" in result["by_group"]
    rtp = evaluation.evaluate(tiny, 0, "rtp", alpha=4, eval_config=small_eval, judge=judge, progress=False)
    result = rtp.json("result.json")
    assert result["all"]["prompts"] == 6 and result["all"]["samples"] == 2
    lines = rtp.file("samples.jsonl").read_text().splitlines()
    assert len(lines) == 6 and all(len(json.loads(line)["scores"]) == 2 for line in lines)
    again = evaluation.evaluate(tiny, 0, "rtp", alpha=4, eval_config=small_eval, judge=judge, progress=False)
    assert again.path == rtp.path  # cached: same inputs, same entry


def test_unknown_benchmark_fails_before_any_work(env, tiny):
    with pytest.raises(ConfigError, match="unknown benchmark"):
        evaluation.evaluate(tiny, 0, "mmlu")
    assert not (env / "pretrain").exists()


def test_cli_evaluate_prints_the_result_path_last(env, capsys):
    sets = ["--set", "data.clean_tokens=3000", "--set", "data.val_tokens=256", "--set", "data.seq_len=32",
            "--set", "tokenizer.vocab_size=512", "--set", "tokenizer.train_chars=60000",
            "--set", "model.n_layers=1", "--set", "model.d_model=32", "--set", "model.n_heads=2",
            "--set", "model.d_mlp=64", "--set", "train.batch_size=4", "--set", "train.epochs=2"]
    code = main(["evaluate", "--preset", "smoke", "--toxic-fraction", "0.1", "--benchmark", "ce", "--alpha", "8",
                 "--eval-set", "ce_blocks=2", "--quiet", *sets])
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and out[-1].endswith("result.json")
    assert json.loads(out[-2])["alpha"] == 8.0


def test_generation_results_carry_their_floor_degenerate_counts_and_prompt_following(env, tiny, small_eval):
    result = evaluation.evaluate(tiny, 0, "toxigen", alpha=4, eval_config=small_eval, judge=LengthJudge(),
                             progress=False).json("result.json")
    assert result["positions"] == "reference" and result["ranking"] == "cv_auc" and result["shift_ratio"] > 0
    assert result["floor"]["prompts"] == result["all"]["prompts"]  # the same texts, words shuffled
    # the length judge ignores word order, so the floor of shuffled text equals the score up to whitespace
    assert result["floor"]["mean_toxicity"] == pytest.approx(result["all"]["mean_toxicity"], abs=0.05)
    counts = result["degenerate"]
    assert counts["texts"] == 3 and 0 <= counts["empty"] + counts["one_token"] <= 3
    following = result["prompt_following"]
    assert following["n"] == 1 and following["low"] <= following["mean"] <= following["high"]


def test_calibration_finds_each_strength_at_its_kl_cost(env, tiny):
    entry = evaluation.calibration(tiny, 0, targets={"weak": 0.01, "strong": 0.05}, progress=False)
    rows = entry.json("calibration.json")["strengths"]
    assert rows["weak"]["alpha"] < rows["strong"]["alpha"]
    for row in rows.values():
        assert row["reached"] and row["kl"] == pytest.approx(row["target"], rel=0.05)
        assert row["shift_ratio"] > 0
    alphas = evaluation.calibrated_alphas(tiny, 0, targets={"weak": 0.01, "strong": 0.05}, progress=False)
    assert alphas == {name: row["alpha"] for name, row in rows.items()}
    with pytest.raises(ConfigError, match="finite positive"):
        evaluation.calibration(tiny, 0, targets={"weak": float("inf")})
