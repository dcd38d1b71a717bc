"""The architecture adapters (toxlab.model.adapters) on a tiny random model of every family: the head-out site is the
attention output projection's input as the model computes it; alpha = 0 is an exact identity; a shift moves
exactly the chosen head; the folded bias equals the hook form (GPT-2's transposed Conv1D weight included, and a
bias added to and removed from projections that have none); greedy generations agree with and without the KV
cache under ITI; a left-padded prompt generates what it generates alone. An unknown architecture fails in one
line that names the supported families and how to add one."""

import pytest
import torch
import transformers

from tests.fixtures.tiny_families import D_MODEL, FAMILIES, HEAD_DIM, N_HEADS, N_LAYERS, tiny_family_model
from tests.fixtures.tiny_model import TEXTS
from toxlab.core.errors import ConfigError
from toxlab.evaluation.evaluate import EvalConfig, generate
from toxlab.interp import hooks
from toxlab.interp.intervene import applied, fit_iti
from toxlab.interp.probe import fit_probes
from toxlab.model import adapters

PLANTED = (1, 2)  # (layer, head)


@pytest.fixture(scope="module", params=FAMILIES)
def model(request, tok):
    return tiny_family_model(request.param, tok)


@pytest.fixture(scope="module")
def iti():
    """An ITI fitted on activations [N, L, H, Dh] with a direction planted in one head: its top head is PLANTED."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, N_LAYERS, N_HEADS, HEAD_DIM, generator=g)
    y = (torch.rand(400, generator=g) < 0.4).long()
    x[:, PLANTED[0], PLANTED[1], 0] += 3.0 * y
    probes = fit_probes(x[:300], y[:300], x[300:], y[300:])
    return fit_iti(probes, x[:300], y[:300], k=1, alpha=8.0)


def _ids(tok, text: str) -> torch.Tensor:
    return torch.tensor(tok(text, add_special_tokens=False)["input_ids"])


def _projection_input(model, ids: torch.Tensor, layer: int) -> torch.Tensor:
    """What the attention output projection of `layer` receives for one sequence, recorded by replacing its
    forward (no hook): [T, H, Dh]."""
    module, seen = adapters.attention_output(model, layer), {}
    original = module.forward
    module.forward = lambda x: (seen.setdefault("x", x.detach().clone()), original(x))[1]
    try:
        with torch.no_grad():
            model(input_ids=ids[None])
    finally:
        module.forward = original
    return seen["x"][0].view(len(ids), N_HEADS, -1)


def _head_outputs(model, ids: torch.Tensor, edit=None):
    """Every layer's head outputs [L, T, H, Dh] and the logits for one sequence, under `edit` (an ITI applied by
    hooks from position 0, i.e. at every position, or None)."""
    seen = {}

    def reader(layer):
        def read(x):
            seen[layer] = x[0].detach().clone()
        return read

    with applied(model, edit, from_position=0), \
            hooks.hooked(model, {hooks.HEAD_OUT.format(i): reader(i) for i in range(N_LAYERS)}), torch.no_grad():
        logits = model(input_ids=ids[None]).logits
    return torch.stack([seen[i] for i in range(N_LAYERS)]), logits


def test_every_family_has_its_row_and_the_site_is_the_projection_input(model, tok):
    adapter = adapters.adapter_for(model)
    assert model.config.model_type in adapter.model_types
    assert len(hooks.decoder_layers(model)) == N_LAYERS and hooks.head_count(model) == N_HEADS
    before = hooks.active_hook_count(model)  # transformers keeps some of its own
    captured = hooks.capture(model, tok, TEXTS, ("head_out", "resid_post"), batch_size=3)  # right-padded batches
    assert captured["head_out"].shape == (len(TEXTS), N_LAYERS, N_HEADS, HEAD_DIM)
    assert captured["resid_post"].shape == (len(TEXTS), N_LAYERS, D_MODEL)
    for i, text in enumerate(TEXTS):
        ids = _ids(tok, text)
        for layer in range(N_LAYERS):
            torch.testing.assert_close(captured["head_out"][i, layer], _projection_input(model, ids, layer)[-1],
                                       atol=1e-5, rtol=1e-4)
    assert hooks.active_hook_count(model) == before
    with torch.no_grad():
        states = model(input_ids=_ids(tok, TEXTS[1])[None], output_hidden_states=True).hidden_states
    torch.testing.assert_close(captured["resid_post"][1, 0], states[1][0, -1], atol=1e-5, rtol=1e-4)


def test_alpha_zero_is_an_exact_identity(model, tok, iti):
    ids = _ids(tok, TEXTS[1])
    base_heads, base_logits = _head_outputs(model, ids)
    heads, logits = _head_outputs(model, ids, iti.with_alpha(0.0))
    assert torch.equal(heads, base_heads) and torch.equal(logits, base_logits)
    with torch.no_grad(), applied(model, iti.with_alpha(0.0)):  # the folded form installs nothing
        assert torch.equal(model(input_ids=ids[None]).logits, base_logits)


def test_a_shift_moves_exactly_the_chosen_head_by_alpha_sigma(model, tok, iti):
    ids = _ids(tok, TEXTS[3])
    base, _ = _head_outputs(model, ids)
    moved, _ = _head_outputs(model, ids, iti)
    layer, head = PLANTED
    assert iti.heads == (PLANTED,)
    assert torch.equal(moved[:layer], base[:layer])  # the layers before are untouched
    others = torch.arange(N_HEADS) != head
    assert torch.equal(moved[layer][:, others], base[layer][:, others])  # the layer's other heads, bit for bit
    delta = moved[layer][:, head] - base[layer][:, head]  # [T, Dh]
    projection = delta @ iti.directions[0]
    torch.testing.assert_close(projection, torch.full_like(projection, -iti.alpha * float(iti.sigmas[0])))
    assert float((delta - projection[:, None] * iti.directions[0]).abs().max()) < 1e-5


def test_the_folded_bias_equals_the_hook_form_and_the_projection_is_restored(model, tok, iti):
    """`applied` without a position folds W_o s into the projection's bias (GPT-2: its Conv1D weight is stored
    transposed; OLMo, Llama, Mistral, Qwen: a bias is added for the block, none has one); the logits equal
    those of the definition, the same shift as hooks on the head outputs."""
    ids = _ids(tok, TEXTS[3])[None]
    strong = iti.with_alpha(20.0)
    projections = [adapters.attention_output(model, layer) for layer in range(N_LAYERS)]
    biases = [p.bias for p in projections]
    before = hooks.active_hook_count(model)
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with hooks.hooked(model, {hooks.HEAD_OUT.format(i): e for i, e in strong.edits().items()}):
            defined = model(input_ids=ids).logits
        with applied(model, strong):
            assert hooks.active_hook_count(model) == before
            assert projections[PLANTED[0]].bias is not biases[PLANTED[0]]
            folded = model(input_ids=ids).logits
        with pytest.raises(RuntimeError, match="planted"), applied(model, strong):
            raise RuntimeError("planted")
    assert not torch.allclose(defined, base, atol=1e-3)
    torch.testing.assert_close(folded, defined, atol=1e-5, rtol=1e-5)
    assert all(p.bias is b for p, b in zip(projections, biases))  # each projection has its own bias (or none) back


def test_greedy_generation_is_the_same_with_and_without_the_kv_cache_under_iti(model, tok, iti):
    config = EvalConfig(max_new_tokens=6, batch_size=4)
    prompts = ["The council", "Volunteers restored the old library", "lol"]
    strong = iti.with_alpha(50.0)
    for positions in ("reference", "all"):
        cached = generate(model, tok, prompts, 1, config, seed=0, iti=strong, do_sample=False, positions=positions)
        uncached = generate(model, tok, prompts, 1, config, seed=0, iti=strong, do_sample=False, use_cache=False,
                            positions=positions)
        assert cached == uncached, positions
    plain = generate(model, tok, prompts, 1, config, seed=0, do_sample=False)
    assert generate(model, tok, prompts, 1, config, seed=0, iti=iti.with_alpha(500.0), do_sample=False) != plain


def test_a_left_padded_prompt_generates_what_it_generates_alone(model, tok, iti):
    config = EvalConfig(max_new_tokens=5, batch_size=8)
    prompts = ["lol", "A small bakery announced plans for a park and the annual festival."]
    for edit in (None, iti.with_alpha(50.0)):
        together = generate(model, tok, prompts, 1, config, seed=0, iti=edit, do_sample=False)
        alone = [generate(model, tok, [p], 1, config, seed=0, iti=edit, do_sample=False)[0] for p in prompts]
        assert together == alone, edit


def test_an_unknown_architecture_fails_in_one_line_naming_the_families_and_how_to_add_one():
    with pytest.raises(ConfigError) as caught:
        adapters.adapter_for(transformers.BloomConfig())
    message = str(caught.value)
    assert "\n" not in message and "'bloom'" in message and "toxlab/model/adapters.py" in message
    assert all(adapter.family in message for adapter in adapters.ADAPTERS)
    assert {t for a in adapters.ADAPTERS for t in a.model_types} >= {"olmo", "olmo2", "llama", "mistral", "qwen2",
                                                                     "gpt2", "gpt_neox"}
