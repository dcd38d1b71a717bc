"""LEACE on heads (toxlab.interp.erasure): the erased head carries no linear trace of the planted label (equal class
means, so no linear probe beats chance), alpha = 0 changes nothing, only the chosen heads change, the
erasers choose the same heads as ITI, and the whole object round-trips through save/load."""

import pytest
import torch

from toxlab.core.config import ModelConfig
from toxlab.core.errors import ConfigError
from toxlab.interp import hooks
from toxlab.interp.erasure import Erasure, fit_leace
from toxlab.interp.intervene import applied, fit_iti
from toxlab.interp.probe import fit_probes
from toxlab.model.decoder import build_model

MODEL = ModelConfig(n_layers=3, d_model=32, n_heads=4, d_mlp=64)
L, H, DH = MODEL.n_layers, MODEL.n_heads, MODEL.d_model // MODEL.n_heads


def _planted(seed=0, n=600):
    """Head activations [N, L, H, Dh]: the label planted in (layer 1, head 2) along a mixed direction."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, L, H, DH, generator=g)
    y = (torch.rand(n, generator=g) < 0.4).long()
    direction = torch.randn(DH, generator=g)
    x[:, 1, 2] += 2.5 * y[:, None] * direction / direction.norm()
    return x, y


@pytest.fixture(scope="module")
def fitted():
    x, y = _planted()
    probes = fit_probes(x[:400], y[:400], x[400:], y[400:])
    return probes, x, y, fit_leace(probes, x[:400], y[:400], k=2)


def _erase_head(erasure, x, i):
    """Apply erasure i to a batch of one head's activations [N, Dh] through the model-facing edit."""
    layer, head = erasure.heads[i]
    acts = torch.zeros(x.shape[0], 1, H, DH)
    acts[:, 0, head] = x
    return erasure.edits()[layer](acts)[:, 0, head]


def test_chooses_the_heads_iti_would_shift(fitted):
    probes, x, y, erasure = fitted
    assert erasure.heads == fit_iti(probes, x[:400], y[:400], k=2).heads
    assert erasure.heads[0] == (1, 2) and erasure.k == 2 and erasure.direction == "leace"


def test_erased_head_has_equal_class_means_and_chance_probes(fitted):
    probes, x, y, erasure = fitted
    before = x[:400, 1, 2]
    after = _erase_head(erasure, before, 0)
    gap_before = (before[y[:400] == 1].mean(0) - before[y[:400] == 0].mean(0)).norm()
    gap_after = (after[y[:400] == 1].mean(0) - after[y[:400] == 0].mean(0)).norm()
    assert gap_before > 2.0 and gap_after < 1e-4 * gap_before
    # a probe refitted on erased held-out activations is no better than the majority class
    held, labels = _erase_head(erasure, x[400:, 1, 2], 0), y[400:]
    refit = fit_probes(held[:100, None, None], labels[:100], held[100:, None, None], labels[100:])
    majority = max(float(labels[100:].float().mean()), 1 - float(labels[100:].float().mean()))
    assert float(refit.val_accuracy.max()) <= majority + 0.1
    assert float(probes.val_accuracy[1, 2]) > majority + 0.2  # the unerased head was separable


def test_the_change_is_rank_one_for_a_binary_label(fitted):
    _, x, _, erasure = fitted
    before = x[:400, 1, 2]
    moved = before - _erase_head(erasure, before, 0)  # [N, Dh]: rank-1 for a binary label
    assert torch.linalg.matrix_rank(moved, atol=1e-4) == 1


def test_alpha_zero_is_identity_and_other_heads_untouched(fitted):
    *_, erasure = fitted
    model = build_model(MODEL, 128, 32, eos_id=0, pad_id=1, seed=0).eval()
    ids = torch.randint(2, 128, (1, 12), generator=torch.Generator().manual_seed(0))
    seen = {}

    def run(edit):
        def reader(layer):
            def read(t):
                seen[layer] = t.detach().clone()
            return read
        with applied(model, edit), hooks.hooked(model, {hooks.HEAD_OUT.format(i): reader(i) for i in range(L)}):
            with torch.no_grad():
                logits = model(input_ids=ids).logits
        return torch.stack([seen[i] for i in range(L)]), logits

    base, base_logits = run(None)
    same, same_logits = run(erasure.with_alpha(0.0))
    assert torch.equal(same, base) and torch.equal(same_logits, base_logits)
    # head (1, 2) is erased at layer 1; every head of layer 0 and the unchosen heads of layer 1 are untouched
    erased, _ = run(erasure)
    chosen = set(erasure.heads)
    for head in range(H):
        if (0, head) not in chosen:
            assert torch.equal(erased[0, :, :, head], base[0, :, :, head])
    assert not torch.equal(erased[1, :, :, 2], base[1, :, :, 2])


def test_save_load_round_trip(fitted, tmp_path):
    *_, erasure = fitted
    erasure.save(tmp_path / "e")
    back = Erasure.load(tmp_path / "e")
    assert back.heads == erasure.heads and back.alpha == erasure.alpha and back.shape == erasure.shape
    assert torch.equal(back.left, erasure.left) and torch.equal(back.bias, erasure.bias)


def test_bad_input_fails_fast():
    x, y = _planted(n=60)
    probes = fit_probes(x[:40], y[:40], x[40:], y[40:])
    with pytest.raises(ConfigError, match="between 1 and"):
        fit_leace(probes, x[:40], y[:40], k=0)
    with pytest.raises(ConfigError, match="both toxic and benign"):
        fit_leace(probes, x[:40], torch.zeros(40, dtype=torch.long), k=1)
