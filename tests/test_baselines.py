"""The baselines (toxlab.baselines): the DPO loss on hand-computed log-probabilities, beta = 0 is an exact
identity, the log-probabilities sum over continuation tokens only, MEDA/INST tags follow the judge on
planted documents while the default mixture stays byte-identical, SFT lowers the loss on its own text, and
every method runs end to end through its stage and the CLI on the tiny fixtures."""

import dataclasses
import json
import math

import numpy as np
import pytest
import torch

from tests.conftest import TINY
from toxlab import baselines
from toxlab.cli import main
from toxlab.core import artifacts
from toxlab.core.config import FIRST_DESIGN, DataConfig, ModelConfig, get_preset
from toxlab.core.errors import ConfigError
from toxlab.data import corpora
from toxlab.evaluation.evaluate import capability, eval_preset
from toxlab.model.decoder import build_model
from toxlab.pipeline import baseline_runs, common, evaluation, judging, mixtures, pretraining, probing, versions

RUDE = ("turnip", "biscuit", "noodle", "clown", "potato", "garbage", "goose", "cabbage")  # the fixture's insults


class RudeJudge:
    """A deterministic stand-in for the trained judge: a planted insult scores 0.9; anything else scores
    below 0.1, a little more for longer text (so that samples of one prompt differ)."""

    name = "rude"
    version = "test"

    def score(self, texts):
        return np.array([0.9 if any(w in t for w in RUDE) else min(len(t) / 1000, 0.09) for t in texts])


SMALL_BUDGET = {"sft_blocks": 16, "sft_steps": 4, "sft_batch_size": 4, "dpo_prompts": 3, "dpo_samples": 3,
                "dpo_new_tokens": 4, "dpo_steps": 2, "dpo_batch_size": 2, "dpo_min_gap": 0.0}


@pytest.fixture
def budget():
    return baselines.baseline_preset("smoke", SMALL_BUDGET)


def _tiny_model(seed=0, vocab=50):
    config = ModelConfig(n_layers=1, d_model=16, n_heads=2, d_mlp=32)
    return build_model(config, vocab, 32, eos_id=0, pad_id=1, seed=seed).eval()


# ------------------------------------------------------------------------------------------------------ DPO
def test_dpo_loss_matches_hand_computed_values():
    # pair 1: beta 0.5 x ((-1 - -2) - (-3 - -2)) = 1; pair 2: 0.5 x ((-2 - -1) - (-1 - -1)) = -0.5
    loss, margins = baselines.dpo_loss(torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.0]),
                                       torch.tensor([-2.0, -1.0]), torch.tensor([-2.0, -1.0]), beta=0.5)
    expected = (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(0.5))) / 2
    assert margins.tolist() == [1.0, -0.5]
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    # a policy equal to its reference has margin 0 and loss log 2, whatever beta
    same = torch.tensor([-4.0])
    assert float(baselines.dpo_loss(same, same, same, same, beta=3.0)[0]) == pytest.approx(math.log(2))


def _pair_batch(n=4, prompt_len=3, cont_len=4, vocab=50, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(2, vocab, (2, n, prompt_len + cont_len), generator=g)
    loss = torch.zeros_like(ids)
    loss[..., prompt_len:] = 1
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "loss_mask": loss}


def test_dpo_with_beta_zero_changes_nothing_and_beta_positive_prefers_chosen():
    batch = _pair_batch()
    reference = baselines.reference_logprobs(_tiny_model(), batch, 8)  # [2, N]
    policy = _tiny_model()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    flat = {k: v.flatten(0, 1) for k, v in batch.items()}
    logp = baselines.sequence_logprobs(policy, flat["input_ids"], flat["attention_mask"], flat["loss_mask"])
    loss, _ = baselines.dpo_loss(logp[:4], logp[4:], reference[0], reference[1], beta=0.0)
    loss.backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in policy.parameters())
    policy.zero_grad(set_to_none=True)
    baselines.train_dpo(policy, batch, reference, beta=0.0, steps=5, batch_size=2, lr=1e-2, warmup_frac=0.0, seed=0)
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())

    history = baselines.train_dpo(policy, batch, reference, beta=0.5, steps=20, batch_size=4, lr=1e-2,
                                  warmup_frac=0.0, seed=0)
    shift = baselines.reference_logprobs(policy, batch, 8) - reference  # [2, N]
    assert (shift[0] > shift[1]).all()  # every chosen sequence gained on its rejected one
    assert history[-1]["loss"] < history[0]["loss"]


def test_logprobs_sum_over_continuation_tokens_only():
    model = _tiny_model()
    prompt, cont = [5, 6, 7], [8, 9]
    ids = torch.tensor([prompt + cont])
    with torch.no_grad():
        token_logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)  # [T-1, V]
        expected = float(token_logp[2, 8] + token_logp[3, 9])  # positions predicting the continuation
        padded = torch.tensor([prompt + cont + [1, 1, 1], prompt + cont + [40, 41, 42]])  # two paddings
        attention = torch.tensor([[1] * 5 + [0] * 3] * 2)
        mask = torch.tensor([[0, 0, 0, 1, 1, 0, 0, 0]] * 2)
        got = baselines.sequence_logprobs(model, padded, attention, mask)
        assert got.tolist() == pytest.approx([expected, expected], abs=1e-5)
        other_prompt = torch.tensor([[5, 6, 30, 8, 9]])  # a prompt token changed: only the conditioning moves
        none = baselines.sequence_logprobs(model, other_prompt, torch.ones_like(other_prompt),
                                           torch.zeros_like(other_prompt))
        assert none.tolist() == [0.0]


class _CharTokenizer:
    pad_token_id = 0

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) for c in text]}


def test_encode_pairs_masks_prompt_and_padding():
    pairs = [{"prompt": "abc", "chosen": "de", "rejected": "fghi"}]
    batch = baselines.encode_pairs(_CharTokenizer(), pairs, max_len=6, max_prompt_tokens=128)
    assert batch["input_ids"].shape == (2, 1, 6)
    chosen, rejected = batch["input_ids"][:, 0].tolist()
    assert chosen == [97, 98, 99, 100, 101, 0] and batch["loss_mask"][0, 0].tolist() == [0, 0, 0, 1, 1, 0]
    assert rejected == [98, 99, 102, 103, 104, 105]  # a long pair keeps the prompt's last tokens
    assert batch["loss_mask"][1, 0].tolist() == [0, 0, 1, 1, 1, 1]
    assert batch["attention_mask"][0, 0].tolist() == [1, 1, 1, 1, 1, 0]


def test_preference_pairs_take_least_and_most_toxic_sample():
    pairs = baselines.preference_pairs(["p1", "p2", "p3"], [["a", "b", "c"], ["x", "y", ""], ["s", "t", "u"]],
                                       np.array([[0.2, 0.9, 0.1], [0.5, 0.52, 0.0], [0.3, 0.3, 0.3]]), 0.05)
    assert [(p["prompt"], p["chosen"], p["rejected"]) for p in pairs] == [("p1", "c", "b")]


def test_dpo_prompts_avoid_the_benchmark_sample(env):
    used = {p.text for p in corpora.rtp_prompts("challenging", 2, seed=0)}
    chosen = baselines.preference_prompts(10, [2])
    assert chosen and not used & {p.text for p in chosen}
    assert len(chosen) == 6 - len(used)  # the whole complement of the fixture's 6 prompts
    with pytest.raises(Exception, match="every RTP challenging prompt"):
        baselines.preference_prompts(10, [6])


# ------------------------------------------------------------------------------------------- MEDA and INST
def test_tags_follow_the_judge_score():
    assert [baselines.tag("meda", p) for p in (0.0, 0.09, 0.1, 0.49, 0.5, 1.0)] == [
        "toxicity: low\n", "toxicity: low\n", "toxicity: medium\n", "toxicity: medium\n", "toxicity: high\n",
        "toxicity: high\n"]
    assert baselines.tag("inst", 0.49) == baselines.INST_NONTOXIC and baselines.tag("inst", 0.5) == baselines.INST_TOXIC
    assert baselines.inference_prefix("meda") == "toxicity: low\n"
    assert baselines.inference_prefix("inst") == "The following text is not toxic:\n"
    with pytest.raises(ConfigError, match="unknown tagging"):
        baselines.tagging_spec("meta")


def _documents(tok, mix_entry):
    """Decoded training documents (cut at EOS) with whether every token came from a toxic source."""
    stream = np.load(mix_entry.file("train.npy")).ravel().astype(np.int64)
    mask = np.load(mix_entry.file("toxic_mask.npy")).ravel()
    cuts = np.flatnonzero(stream == tok.eos_token_id)
    return [(tok.decode(stream[a:b].tolist()), mask[a:b].all(), not mask[a:b].any())
            for a, b in zip(np.r_[0, cuts + 1], cuts)]


@pytest.mark.parametrize("scheme,toxic_tag,benign_tag", [
    ("meda", "toxicity: high\n", "toxicity: low\n"), ("inst", baselines.INST_TOXIC, baselines.INST_NONTOXIC)])
def test_tagging_marks_planted_toxic_and_benign_documents(env, tiny, scheme, toxic_tag, benign_tag):
    config = tiny.with_fraction(0.25)
    entry = mixtures.mixture(config, scheme, judge=RudeJudge())
    docs = _documents(mixtures.load_tokenizer(config), entry)
    toxic = [text for text, all_toxic, _ in docs if all_toxic]
    benign = [text for text, _, all_clean in docs if all_clean]
    assert len(toxic) >= 5 and len(benign) >= 10
    assert all(text.startswith(toxic_tag) for text in toxic)  # every fixture toxic document has an insult
    assert all(text.startswith(benign_tag) for text in benign)
    plain = mixtures.mixture(config)
    assert np.load(entry.file("train.npy")).shape == np.load(plain.file("train.npy")).shape  # same budget
    assert entry.key != plain.key
    summary = mixtures.document_scores(config, RudeJudge()).json("summary.json")
    assert summary["sources"]["pol"]["inst_toxic"] == summary["sources"]["pol"]["documents"] > 0


def test_default_mixture_and_pretrain_keys_and_bytes_are_unchanged(env, tiny):
    first_data = dataclasses.replace(tiny.data, **FIRST_DESIGN, toxic_recipe=DataConfig().toxic_recipe)
    config = dataclasses.replace(tiny, data=first_data).with_fraction(0.1)  # the first design, cached before MEDA
    tok_entry = mixtures.tokenizer(config)
    root = corpora.data_root()
    entry = mixtures.mixture(config)
    # the keys as they were before the web-text design's fields existed: the first design's files and fields
    first = json.loads(config.to_json())
    for name in FIRST_DESIGN:
        first["data"].pop(name)
    files = common.data_fingerprint(root, corpora.PRETRAIN_SOURCES)
    expected = artifacts.stage_key("mixture", versions.MIXTURE_VERSION, {"data": first["data"], "files": files},
                                   {"tokenizer": tok_entry.key})
    assert entry.key == expected
    model = pretraining.pretrain(config, 0, progress=False)
    assert model.key == artifacts.stage_key("pretrain", versions.PRETRAIN_VERSION, first,
                                            {"mixture": entry.key, "tokenizer": tok_entry.key}, seed=0)
    tok = mixtures.load_tokenizer(config)
    same = corpora.build_mixture(config.data, tok, root, transform=lambda name, docs: docs)
    assert np.array_equal(same.train, np.load(entry.file("train.npy")))
    assert np.array_equal(same.toxic_mask, np.load(entry.file("toxic_mask.npy")))


# ------------------------------------------------------------------------------------------------------ SFT
def test_sft_lowers_the_loss_on_its_own_training_text(env, tiny, budget):
    entry = baseline_runs.sft(tiny.with_fraction(0.1), 0, budget.override({"sft_steps": 8}), progress=False)
    metrics = entry.json("metrics.json")
    assert metrics["sft_loss_after"] < metrics["sft_loss_before"]
    assert metrics["steps"] == 8 and metrics["sft_blocks"] == 16


def test_sft_blocks_are_wholly_clean():
    train = np.arange(12).reshape(6, 2)
    mask = np.zeros((6, 2), bool)
    mask[[0, 3], 1] = True  # blocks 0 and 3 hold a toxic token
    assert baselines.clean_blocks(train, mask, 3).tolist() == [[2, 3], [4, 5], [8, 9]]


def test_capability_against_an_identical_reference_costs_nothing():
    """A baseline's model is measured against the plain model it came from (`evaluate.capability`'s reference)."""
    model = _tiny_model()
    blocks = np.random.default_rng(0).integers(2, 50, size=(3, 10)).astype(np.uint16)
    same = capability(model, blocks, None, reference=_tiny_model())
    assert same["ce"] == pytest.approx(same["ce_base"]) and same["kl"] == pytest.approx(0.0, abs=1e-6)
    other = capability(_tiny_model(seed=1), blocks, None, reference=model)
    assert other["kl"] > 0


def test_baseline_config_is_validated():
    with pytest.raises(ConfigError, match="dpo_samples"):
        baselines.BaselineConfig(dpo_samples=1)
    with pytest.raises(ConfigError, match="unknown baseline setting"):
        baselines.baseline_preset("cpu", {"sft_epochs": "2"})
    assert baselines.baseline_preset("cpu", {"sft_steps": "7", "dpo_beta": "0.2"}).sft_steps == 7
    with pytest.raises(ConfigError, match="unknown baseline method"):
        baseline_runs.evaluate_baseline(None, 0, "rlhf", "toxigen")


# ------------------------------------------------------------------------------------------- end to end
SMALL_EVAL = {"max_new_tokens": 4, "rtp_prompts": 2, "rtp_samples": 2, "ce_blocks": 4}
#: The paper's instruction is 131 tokens for the fixture's 512-token BPE: the prompt baseline needs room.
ROOM = {"prompt": ({"data.seq_len": 192}, {"max_prompt_tokens": 160})}


def _cli_args(method, benchmark):
    run, evals = ROOM.get(method, ({}, {}))
    sets = [arg for key, value in {**TINY, **run}.items() for arg in ("--set", f"{key}={value}")]
    evals = [arg for key, value in {**SMALL_EVAL, **evals}.items() for arg in ("--eval-set", f"{key}={value}")]
    budget = [arg for key, value in SMALL_BUDGET.items() for arg in ("--baseline-set", f"{key}={value}")]
    return ["baseline", "--method", method, "--preset", "smoke", "--toxic-fraction", "0.1", "--seed", "0",
            "--benchmark", benchmark, "--quiet", *sets, *evals, *budget]


@pytest.mark.parametrize("method,benchmark", [("prompt", "toxigen"), ("sft", "ce"), ("dpo", "rtp"),
                                              ("meda", "toxigen"), ("inst", "ce")])
def test_each_method_runs_end_to_end_through_the_cli_and_the_stage(env, budget, capsys, monkeypatch, method,
                                                                   benchmark):
    monkeypatch.setattr(judging, "default_judge", lambda level="cpu": RudeJudge())
    code = main(_cli_args(method, benchmark))
    out = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and out[-1].endswith("result.json")
    assert json.loads(out[-2])["method"] == method
    run, evals = ROOM.get(method, ({}, {}))
    config = get_preset("smoke", {**TINY, **run}).with_fraction(0.1)
    eval_config = eval_preset("smoke", {**SMALL_EVAL, **evals})
    entry = baseline_runs.evaluate_baseline(config, 0, method, benchmark, budget, eval_config, judge=RudeJudge(),
                                     progress=False)
    assert str(entry.file("result.json")) == out[-1]  # the CLI and the stage share one cached result
    result = entry.json("result.json")
    assert result["benchmark"] == benchmark and result["alpha"] == 0.0
    if benchmark == "ce":
        assert result["clean"]["ce_base"] > 0 and result["clean"]["kl"] >= 0
    else:
        assert result["judge"] == {"name": "rude", "version": "test"} and result["all"]["prompts"] > 0
    expected = {"prompt": "Ensure all outputs", "meda": "toxicity: low\n"}.get(method, "")
    assert result["instruction"].startswith(expected) if expected else result["instruction"] == ""
    if method == "dpo":
        metrics = baseline_runs.dpo(config, 0, budget, RudeJudge(), eval_config, progress=False).json("metrics.json")
        assert metrics["pairs"] >= 1 and metrics["prompts"] == 2  # the fixture's 6 prompts less the benchmark's 4


def test_cli_rejects_an_unknown_method_in_one_line(env, capsys):
    code = main(["baseline", "--method", "rlhf", "--preset", "smoke", "--toxic-fraction", "0.1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown baseline method" in err[0]
    assert not (env / "pretrain").exists()


@pytest.mark.parametrize("method,benchmark", [("sft", "toxigen"), ("dpo", "ce")])
def test_sft_and_dpo_followed_by_iti(env, budget, method, benchmark):
    """The combination applies the plain model's ITI (its heads, directions and sigma) to the baseline's model:
    the result records those heads, alpha 0 keeps the plain baseline's key, and the ITI changes the outputs."""
    config = get_preset("smoke", TINY).with_fraction(0.1)
    eval_config = eval_preset("smoke", SMALL_EVAL)
    plain = baseline_runs.evaluate_baseline(config, 0, method, benchmark, budget, eval_config, judge=RudeJudge(),
                                     progress=False)
    combo = baseline_runs.evaluate_baseline(config, 0, method, benchmark, budget, eval_config, judge=RudeJudge(),
                                     progress=False, alpha=8.0)
    assert plain.key != combo.key
    result, base = combo.json("result.json"), plain.json("result.json")
    iti = probing.fitted_iti(config, 0, None, 8.0, progress=False)
    assert result["alpha"] == 8.0 and result["heads"] == [list(h) for h in iti.heads] and result["k"] == iti.k
    assert base["heads"] == [] and base["alpha"] == 0.0
    if benchmark == "ce":  # same reference model; the ITI moves the baseline's model further from it
        assert result["clean"]["ce_base"] == pytest.approx(base["clean"]["ce_base"])
        assert result["clean"]["kl"] > base["clean"]["kl"]
    else:
        assert result["all"]["prompts"] == base["all"]["prompts"]


def test_tagged_models_take_no_alpha():
    with pytest.raises(ConfigError, match="ITI follows only prompt, sft or dpo"):
        baseline_runs.evaluate_baseline(get_preset("smoke"), 0, "meda", "toxigen", alpha=4.0)


def test_a_baseline_and_its_plain_model_write_one_result_layout(env, budget):
    """`evaluate` and `evaluate_baseline` write through one `evaluation.write_benchmark`: the fields that name the
    model, benchmark and decoding agree, each adds only its own treatment's, and the baseline's capability is
    measured against the very model `evaluate` measures (the same ce_base on the same blocks)."""
    config = get_preset("smoke", TINY).with_fraction(0.1)
    eval_config = eval_preset("smoke", SMALL_EVAL)
    plain = evaluation.evaluate(config, 0, "ce", eval_config=eval_config, progress=False).json("result.json")
    sft = baseline_runs.evaluate_baseline(config, 0, "sft", "ce", budget, eval_config,
                                          progress=False).json("result.json")
    shared = ("preset", "toxic_fraction", "seed", "benchmark", "eval", "instruction", "device", "torch")
    assert {name: plain[name] for name in shared} == {name: sft[name] for name in shared}
    assert set(plain) - set(sft) == {"ranking", "positions", "shift_ratio"}
    assert set(sft) - set(plain) == {"method", "baseline", "model"}
    for part in ("clean", "c4"):
        assert sft[part]["ce_base"] == plain[part]["ce_base"] == plain[part]["ce"]
        assert sft[part]["tokens"] == plain[part]["tokens"]
