"""Hooks: capture matches a manual forward pass, edits change the output exactly as planted, and no hook
survives the context manager, even when its body raises."""

import pytest
import torch

from tests.fixtures.tiny_model import TEXTS, tiny_model
from toxlab.core.config import ModelConfig
from toxlab.interp import hooks

MODEL = ModelConfig(n_layers=2, d_model=32, n_heads=4, d_mlp=64)


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok, MODEL)


def _manual_head_out(model, ids: torch.Tensor, layer: int) -> torch.Tensor:
    """The o_proj input of `layer` for one unpadded sequence, recomputed without hooks: [T, H, Dh]."""
    seen = {}
    module = model.model.layers[layer].self_attn.o_proj
    original = module.forward
    module.forward = lambda x: (seen.setdefault("x", x.detach().clone()), original(x))[1]
    try:
        with torch.no_grad():
            model(input_ids=ids[None])
    finally:
        module.forward = original
    return seen["x"][0].view(ids.shape[0], MODEL.n_heads, -1)


def test_capture_matches_a_manual_forward_pass(model, tok):
    acts = hooks.capture(model, tok, TEXTS, pool="last", batch_size=3)["head_out"]  # padded batches
    assert acts.shape == (len(TEXTS), MODEL.n_layers, MODEL.n_heads, MODEL.head_dim)
    for i, text in enumerate(TEXTS):
        ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
        for layer in range(MODEL.n_layers):
            torch.testing.assert_close(acts[i, layer], _manual_head_out(model, ids, layer)[-1], atol=1e-5, rtol=1e-4)


def test_mean_pooling_and_residual_stream(model, tok):
    mean = hooks.capture(model, tok, TEXTS[:2], pool="mean")["head_out"]
    ids = torch.tensor(tok(TEXTS[1], add_special_tokens=False)["input_ids"])
    torch.testing.assert_close(mean[1, 0], _manual_head_out(model, ids, 0).mean(0), atol=1e-5, rtol=1e-4)
    resid = hooks.capture(model, tok, TEXTS[:2], kinds=("resid_post",))["resid_post"]
    with torch.no_grad():
        states = model(input_ids=ids[None], output_hidden_states=True).hidden_states
    assert resid.shape == (2, MODEL.n_layers, MODEL.d_model)
    torch.testing.assert_close(resid[1, 0], states[1][0, -1], atol=1e-5, rtol=1e-4)


def test_several_poolings_from_one_pass_equal_separate_captures(model, tok):
    both = hooks.capture_pools(model, tok, TEXTS, ("head_out", "resid_post"), ("last", "mean"), batch_size=3)
    for pool in ("last", "mean"):
        alone = hooks.capture(model, tok, TEXTS, ("head_out", "resid_post"), pool, batch_size=3)
        for kind in alone:
            assert torch.equal(both[pool][kind], alone[kind]), (pool, kind)
    assert not torch.equal(both["last"]["head_out"], both["mean"]["head_out"])
    with pytest.raises(ValueError, match="unknown"):
        hooks.capture_pools(model, tok, TEXTS, pools=("last", "max"))


def test_zero_edit_is_an_exact_identity_and_a_shift_changes_the_output(model, tok):
    ids = torch.tensor([tok(TEXTS[1], add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        base = model(input_ids=ids).logits
        with hooks.hooked(model, {hooks.HEAD_OUT.format(1): lambda x: x + 0.0}):
            same = model(input_ids=ids).logits
        shift = torch.zeros(MODEL.n_heads, MODEL.head_dim)
        shift[2] = 1.0
        with hooks.hooked(model, {hooks.HEAD_OUT.format(1): lambda x: x + shift}):
            moved = model(input_ids=ids).logits
    assert torch.equal(base, same)
    assert not torch.allclose(base, moved)


def test_no_hook_survives_an_exception(model):
    before = hooks.active_hook_count(model)
    with pytest.raises(RuntimeError, match="planted"):
        with hooks.hooked(model, {name: (lambda x: None) for name in hooks.site_names(model)}):
            assert hooks.active_hook_count(model) == before + MODEL.n_layers
            raise RuntimeError("planted")
    assert hooks.active_hook_count(model) == before


def test_unknown_site_is_rejected_and_leaves_nothing(model):
    before = hooks.active_hook_count(model)
    with pytest.raises(ValueError, match="unknown site"):
        with hooks.hooked(model, {hooks.HEAD_OUT.format(0): lambda x: None, "blocks.0.mlp.nonsense": lambda x: None}):
            pass
    assert hooks.active_hook_count(model) == before
