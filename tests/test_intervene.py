"""ITI and evaluation: alpha = 0 is an exact identity; alpha > 0 moves exactly the chosen heads by
alpha x sigma along their direction and leaves every other head bit-identical; greedy generations agree
with and without the KV cache under intervention, and a left-padded prompt generates what it generates
alone; the RTP metrics on hand-made score arrays; KL is zero without an intervention."""

import numpy as np
import pytest
import torch

from tests.fixtures.tiny_model import TEXTS, tiny_model
from toxlab.core.config import ModelConfig
from toxlab.core.errors import ConfigError
from toxlab.evaluation import evaluate
from toxlab.evaluation.evaluate import EvalConfig, capability, compare_next_token, eval_preset, generate
from toxlab.interp import hooks
from toxlab.interp.intervene import ITI, applied, fit_iti
from toxlab.interp.probe import fit_probes

MODEL = ModelConfig(n_layers=3, d_model=32, n_heads=4, d_mlp=64)
L, H, DH = MODEL.n_layers, MODEL.n_heads, MODEL.d_model // MODEL.n_heads


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, MODEL)


def _planted(seed=0, n=400):
    """Head activations [N, L, H, Dh] with a toxicity direction planted in (layer 1, head 2)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, L, H, DH, generator=g)
    y = (torch.rand(n, generator=g) < 0.4).long()
    x[:, 1, 2, 0] += 3.0 * y
    return x, y


@pytest.fixture(scope="module")
def iti():
    x, y = _planted()
    probes = fit_probes(x[:300], y[:300], x[300:], y[300:])
    return fit_iti(probes, x[:300], y[:300], k=2, alpha=8.0)


def _as_hooks(model, edit):
    """The ITI as its definition: hooks adding the shift to the head outputs (`applied` folds it into o_proj)."""
    return hooks.hooked(model, {hooks.HEAD_OUT.format(i): e for i, e in (edit.edits() if edit else {}).items()})


def _head_outputs(model, ids, edit=None):
    """Every layer's head outputs [L, T, H, Dh] for one sequence, under `edit` (an ITI or None, as hooks)."""
    seen = {}

    def reader(layer):
        def read(x):
            seen[layer] = x[0].detach().clone()
        return read

    with _as_hooks(model, edit), hooks.hooked(model, {hooks.HEAD_OUT.format(i): reader(i) for i in range(L)}):
        with torch.no_grad():
            logits = model(input_ids=ids[None]).logits
    return torch.stack([seen[i] for i in range(L)]), logits


def test_planted_head_is_chosen_first_with_its_direction(iti):
    assert iti.heads[0] == (1, 2)
    assert float(iti.directions[0, 0]) > 0.9  # the planted axis, pointing towards toxic
    assert iti.k == 2 and torch.allclose(iti.directions.norm(dim=1), torch.ones(2))


def test_alpha_zero_is_an_exact_identity(model, tok, iti):
    ids = tok("The council opened a bridge.", return_tensors="pt")["input_ids"][0]
    base_heads, base_logits = _head_outputs(model, ids)
    heads, logits = _head_outputs(model, ids, iti.with_alpha(0.0))
    assert torch.equal(heads, base_heads) and torch.equal(logits, base_logits)


def test_shift_moves_only_the_chosen_heads_by_alpha_sigma(model, tok):
    x, y = _planted()
    probes = fit_probes(x[:300], y[:300], x[300:], y[300:])
    edit = fit_iti(probes, x[:300], y[:300], k=1, alpha=4.0)  # one head: (1, 2)
    ids = tok("Volunteers restored the old library on day 3.", return_tensors="pt")["input_ids"][0]
    base, _ = _head_outputs(model, ids)
    moved, _ = _head_outputs(model, ids, edit)
    assert torch.equal(moved[0], base[0])  # the layer before is untouched
    mask = torch.zeros(H, dtype=torch.bool)
    mask[2] = True
    assert torch.equal(moved[1][:, ~mask], base[1][:, ~mask])  # the other heads of the layer, bit for bit
    projection = (moved[1][:, 2] - base[1][:, 2]) @ edit.directions[0]  # [T]
    torch.testing.assert_close(projection, torch.full_like(projection, -4.0 * float(edit.sigmas[0])))
    orthogonal = (moved[1][:, 2] - base[1][:, 2]) - projection[:, None] * edit.directions[0]
    assert float(orthogonal.abs().max()) < 1e-5


def test_applied_iti_is_its_definition_folded_into_o_proj(model, tok, iti):
    """`applied` adds W_o s to o_proj as a bias instead of hooking the heads: the same logits (up to rounding)
    as the hooks' definition, alpha = 0 installs nothing (bit-identical), and the model is restored even
    when the block raises."""
    ids = tok(TEXTS[3], return_tensors="pt")["input_ids"]
    strong = iti.with_alpha(20.0)
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with _as_hooks(model, strong):
            defined = model(input_ids=ids).logits
        with applied(model, strong):
            assert hooks.active_hook_count(model) == 0
            assert {i for i in range(L) if hooks.decoder_layers(model)[i].self_attn.o_proj.bias is not None} == \
                {layer for layer, _ in strong.heads}
            folded = model(input_ids=ids).logits
        with applied(model, iti.with_alpha(0.0)):
            same = model(input_ids=ids).logits
        with pytest.raises(RuntimeError, match="planted"), applied(model, strong):
            raise RuntimeError("planted")
    assert not torch.allclose(defined, base, atol=1e-3)
    torch.testing.assert_close(folded, defined, atol=1e-5, rtol=1e-5)
    assert torch.equal(same, base)
    assert all(layer.self_attn.o_proj.bias is None for layer in hooks.decoder_layers(model))
    assert all(name.endswith("weight") for name, _ in model.named_parameters())


def test_greedy_generation_is_the_same_with_and_without_the_kv_cache(model, tok, iti):
    config = EvalConfig(max_new_tokens=6, batch_size=4)
    prompts = ["The council", "Volunteers restored the old library", "lol"]
    cached = generate(model, tok, prompts, 1, config, seed=0, iti=iti, do_sample=False, use_cache=True)
    uncached = generate(model, tok, prompts, 1, config, seed=0, iti=iti, do_sample=False, use_cache=False)
    assert cached == uncached
    plain = generate(model, tok, prompts, 1, config, seed=0, iti=None, do_sample=False)
    strong = generate(model, tok, prompts, 1, config, seed=0, iti=iti.with_alpha(200.0), do_sample=False)
    assert strong != plain  # the intervention reaches generation


def test_left_padding_does_not_change_a_prompt_s_generation(model, tok):
    config = EvalConfig(max_new_tokens=5, batch_size=8)
    prompts = ["lol", "A small bakery announced plans for a park and the annual festival."]
    together = generate(model, tok, prompts, 1, config, seed=0, do_sample=False)
    alone = [generate(model, tok, [p], 1, config, seed=0, do_sample=False)[0] for p in prompts]
    assert together == alone


def test_parts_of_the_generation_put_together_are_the_whole(model, tok, iti):
    """Shared among processes (`part`), each generates whole batches with their own seeds: the parts
    together are exactly one process's samples, and each prompt is generated by one part only."""
    config = EvalConfig(max_new_tokens=4, batch_size=4)  # 2 prompts of 2 samples a batch: 4 batches
    prompts = ["The council", "lol", "A small bakery", "Volunteers restored", "The old library", "day 3", "park"]
    whole = generate(model, tok, prompts, 2, config, seed=3, iti=iti)
    parts = [generate(model, tok, prompts, 2, config, seed=3, iti=iti, part=(i, 3)) for i in range(3)]
    assert [sum(p[n] is not None for p in parts) for n in range(len(prompts))] == [1] * len(prompts)
    assert [next(p[n] for p in parts if p[n] is not None) for n in range(len(prompts))] == whole
    assert parts[0][0] is not None and parts[0][2] is None  # batch 0 in part 0, batch 1 elsewhere
    with pytest.raises(ConfigError, match="part"):
        generate(model, tok, prompts, 2, config, seed=3, part=(3, 3))


def test_sampling_is_seeded_and_returns_k_samples_per_prompt(model, tok):
    config = EvalConfig(max_new_tokens=4, batch_size=6)
    prompts = ["The council", "lol", "A small bakery"]
    first = generate(model, tok, prompts, 3, config, seed=7)
    assert len(first) == 3 and all(len(s) == 3 for s in first)
    torch.manual_seed(123)  # the global RNG does not matter
    assert generate(model, tok, prompts, 3, config, seed=7) == first
    assert generate(model, tok, prompts, 3, config, seed=8) != first


def test_capability_without_intervention_has_zero_kl_and_equal_ce(model, tok, iti):
    ids = tok(" ".join(TEXTS * 3), return_tensors="np")["input_ids"][0]
    blocks = ids[:48].reshape(4, 12)  # [4, 12]
    same = capability(model, blocks, None, batch_size=2)
    assert same["kl"] == 0.0 and same["ce"] == same["ce_base"]
    shifted = capability(model, blocks, iti.with_alpha(50.0), batch_size=2)
    assert shifted["kl"] > 0 and shifted["ce_base"] == same["ce_base"]
    # alpha 0 takes the one-pass path; it gives what two passes (base, then base under a null shift) give
    assert capability(model, blocks, iti.with_alpha(0.0), batch_size=2) == same
    def logits(x):
        return model(input_ids=x).logits
    assert compare_next_token(logits, logits, blocks, 2, torch.device("cpu")) == same


def test_rtp_metrics_on_hand_made_scores():
    scores = np.array([[0.1, 0.7, 0.2], [0.0, 0.1, 0.4], [0.5, 0.2, 0.9]])
    assert evaluate.expected_max_toxicity(scores) == pytest.approx((0.7 + 0.4 + 0.9) / 3)
    assert evaluate.toxicity_probability(scores) == pytest.approx(2 / 3)  # 0.5 counts as toxic
    summary = evaluate.summarise_scores(scores)
    assert summary["mean_toxicity"] == pytest.approx(scores.mean())
    low, high = summary["expected_max_toxicity_ci"]
    assert low <= summary["expected_max_toxicity"] <= high


def test_iti_saves_loads_and_moves(tmp_path, iti):
    iti.save(tmp_path / "iti")
    loaded = ITI.load(tmp_path / "iti")
    assert loaded.heads == iti.heads and loaded.alpha == iti.alpha and loaded.shape == iti.shape
    assert torch.equal(loaded.directions, iti.directions) and torch.equal(loaded.sigmas, iti.sigmas)
    assert loaded.to("cpu").directions.device.type == "cpu"


def test_random_and_probe_directions_are_unit_vectors():
    x, y = _planted()
    probes = fit_probes(x[:300], y[:300], x[300:], y[300:])
    for direction in ("probe", "random"):
        edit = fit_iti(probes, x[:300], y[:300], k=3, direction=direction, seed=1)
        torch.testing.assert_close(edit.directions.norm(dim=1), torch.ones(3))
    probe_dir = fit_iti(probes, x[:300], y[:300], k=1, direction="probe")
    assert float(probe_dir.directions[0, 0]) > 0.9


@pytest.mark.parametrize("kwargs, message", [({"k": 0}, "between 1"), ({"k": L * H + 1}, "between 1"),
                                             ({"k": 2, "alpha": "strong"}, "must be a number"),
                                             ({"k": 2, "direction": "up"}, "choose one of")])
def test_bad_iti_arguments_fail_fast(kwargs, message):
    x, y = _planted()
    probes = fit_probes(x[:300], y[:300], x[300:], y[300:])
    with pytest.raises(ConfigError, match=message):
        fit_iti(probes, x[:300], y[:300], **kwargs)


def test_eval_config_validates():
    with pytest.raises(ConfigError, match="unknown eval"):
        eval_preset("smoke", {"samples": 3})
    with pytest.raises(ConfigError, match="positive"):
        EvalConfig(rtp_samples=0)
    with pytest.raises(ConfigError, match="unknown preset"):
        eval_preset("huge")
    assert evaluate.first_statement(" a b\n- c") == "a b"


def test_an_instruction_survives_truncation_of_a_long_prompt(model, tok):
    config = EvalConfig(max_new_tokens=3, batch_size=4, max_prompt_tokens=8)
    long_prompt = " ".join(TEXTS * 3)
    seen = {}
    original = model.generate

    def spy(**kwargs):
        seen["ids"] = kwargs["input_ids"].clone()
        return original(**kwargs)

    model.generate = spy
    try:
        generate(model, tok, [long_prompt], 1, config, seed=0, do_sample=False, instruction="lol no\n")
    finally:
        model.generate = original
    head = tok("lol no\n", add_special_tokens=False)["input_ids"]
    tail = tok(long_prompt, add_special_tokens=False)["input_ids"][-(8 - len(head)):]
    assert seen["ids"][0].tolist() == head + tail


def test_generation_leaves_the_tokenizer_as_it_found_it(model, tok):
    """Capture pools at the last token of right-padded batches: generating (left-padded) must not change a
    shared tokenizer's padding side under it."""
    side = tok.padding_side
    generate(model, tok, ["lol", "The council opened"], 1, EvalConfig(max_new_tokens=2, batch_size=4), seed=0,
             do_sample=False)
    assert tok.padding_side == side
