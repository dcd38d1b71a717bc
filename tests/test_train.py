"""Training: loss falls on a tiny corpus, the run is deterministic, resumption is exact, the schedule is
right, and the saved folder loads with transformers."""

import numpy as np
import pytest
import torch

from toxlab.core.config import ModelConfig, TrainConfig
from toxlab.model import train as training
from toxlab.model.decoder import build_model, count_params, train_flops_per_token

MODEL = ModelConfig(n_layers=1, d_model=32, n_heads=2, d_mlp=64)


def _blocks(n=32, seq_len=16, vocab=64, seed=0):
    # A learnable stream: a fixed random cycle of tokens, so next-token loss can fall far below uniform.
    rng = np.random.default_rng(seed)
    cycle = rng.integers(2, vocab, size=23)
    stream = np.tile(cycle, n * seq_len // len(cycle) + 1)[: n * seq_len]
    return stream.reshape(n, seq_len).astype(np.uint16)  # [n_blocks, seq_len]


def _model(seed=0, vocab=64):
    return build_model(MODEL, vocab, 16, eos_id=0, pad_id=1, seed=seed)


def _params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


CONFIG = TrainConfig(batch_size=4, epochs=6.0, lr=1e-2, eval_every=0, checkpoint_every=0)


def test_loss_falls_on_a_tiny_corpus():
    blocks = _blocks()
    model, state = training.train(_model(), blocks, blocks[:4], CONFIG, seed=0, progress=False)
    first, last = state.history[0]["loss"], state.history[-1]["loss"]
    assert first > np.log(64) - 1.0 and last < 0.5 * first
    assert "val_loss" in state.history[-1]


def test_same_seed_same_weights_and_different_seed_differs():
    blocks = _blocks()
    a, _ = training.train(_model(0), blocks, blocks[:4], CONFIG, seed=0, progress=False)
    b, _ = training.train(_model(0), blocks, blocks[:4], CONFIG, seed=0, progress=False)
    c, _ = training.train(_model(1), blocks, blocks[:4], CONFIG, seed=1, progress=False)
    assert torch.equal(_params(a), _params(b))
    assert not torch.equal(_params(a), _params(c))


@pytest.mark.parametrize("compiled", [False, True])
def test_resume_from_checkpoint_is_exact(tmp_path, compiled):
    """Also for a compiled model, whose checkpoint holds the plain module's weights (not `_orig_mod.` ones)."""
    blocks = _blocks()
    config = TrainConfig(batch_size=4, epochs=2.0, lr=1e-2, eval_every=0, checkpoint_every=0, compile=compiled)
    straight, full = training.train(_model(), blocks, blocks[:4], config, seed=3, progress=False)
    half = full.step // 2
    training.train(_model(), blocks, blocks[:4], config, seed=3, work_dir=tmp_path, progress=False,
                   stop_after=half)
    assert (tmp_path / training.CHECKPOINT).exists()
    # A fresh process would rebuild the model from scratch: the checkpoint must restore everything.
    resumed, state = training.train(_model(), blocks, blocks[:4], config, seed=3, work_dir=tmp_path,
                                    progress=False)
    assert state.step == full.step
    if compiled:  # compiled kernels need not be bit-identical from one compilation to the next
        assert torch.allclose(_params(straight), _params(resumed), atol=1e-5)
        assert np.allclose([h["loss"] for h in state.history], [h["loss"] for h in full.history], atol=1e-5)
    else:
        assert torch.equal(_params(straight), _params(resumed))
        assert [h["loss"] for h in state.history] == [h["loss"] for h in full.history]


def test_batches_cover_each_epoch_once():
    seen = np.concatenate([training.batch_indices(s, 32, 4, seed=0) for s in range(8)])
    assert sorted(seen.tolist()) == list(range(32))
    ranks = [training.batch_indices(0, 32, 4, seed=0, rank=r, world_size=2) for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1])


def test_lr_schedule_warms_up_then_decays_to_floor():
    lrs = [training.lr_lambda(s, 100, 10, 0.1) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[100] == pytest.approx(0.1)


def test_evaluate_matches_the_models_own_loss():
    blocks = _blocks()
    model = _model()
    x = torch.from_numpy(blocks[:4].astype(np.int64))
    with torch.no_grad():
        expected = model(input_ids=x, labels=x).loss.item()
    assert training.evaluate(model, blocks[:4], 4, "cpu") == pytest.approx(expected, rel=1e-5)


def test_param_and_flop_counts():
    model = _model()
    counts = count_params(model)
    assert counts["embedding"] == 64 * 32
    per_layer = 4 * 32 * 32 + 3 * 32 * 64
    assert counts["non_embedding"] == per_layer  # non-parametric LayerNorm: no norm weights
    assert train_flops_per_token(MODEL, 64, 16) == 6 * (per_layer + 64 * 32) + 12 * 16 * 32


def test_snapshot_steps_are_early_distinct_and_before_the_end():
    assert training.snapshot_steps(400) == (25, 50, 100, 200)
    assert training.snapshot_steps(3) == (1,)
    assert training.snapshot_steps(1) == ()


def test_snapshots_hold_the_weights_of_the_run_at_that_step(tmp_path):
    from transformers import AutoModelForCausalLM
    blocks = _blocks()
    config = TrainConfig(batch_size=4, epochs=2.0, lr=1e-2, eval_every=0, checkpoint_every=0)
    plain, full = training.train(_model(), blocks, blocks[:4], config, seed=3, progress=False)
    with_snaps, _ = training.train(_model(), blocks, blocks[:4], config, seed=3, progress=False,
                                   snapshot_dir=tmp_path)
    assert torch.equal(_params(plain), _params(with_snaps))  # saving snapshots does not change the run
    steps = training.snapshot_steps(full.step)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"step_{s:06d}" for s in steps]
    first = steps[0]
    early, _ = training.train(_model(), blocks, blocks[:4], config, seed=3, progress=False, stop_after=first)
    saved = AutoModelForCausalLM.from_pretrained(str(tmp_path / f"step_{first:06d}"))
    assert torch.equal(_params(early), _params(saved))


@pytest.mark.parametrize("every", [1, 7])
def test_reading_losses_back_late_changes_nothing(monkeypatch, every):
    """Losses are read back from the device every SYNC_EVERY steps: the weights and every step's recorded
    loss are those of reading them each step, and none is left unread."""
    blocks = _blocks()
    config = TrainConfig(batch_size=4, epochs=3.0, lr=1e-2, eval_every=5, checkpoint_every=0)
    monkeypatch.setattr(training, "SYNC_EVERY", 1)
    a, each = training.train(_model(), blocks, blocks[:4], config, seed=0, progress=False)
    monkeypatch.setattr(training, "SYNC_EVERY", every if every > 1 else 1000)
    b, late = training.train(_model(), blocks, blocks[:4], config, seed=0, progress=False)
    assert torch.equal(_params(a), _params(b))
    assert [h["loss"] for h in late.history] == [h["loss"] for h in each.history]
    assert all(isinstance(h["loss"], float) for h in late.history)
    assert [h.get("val_loss") for h in late.history] == [h.get("val_loss") for h in each.history]
    assert late.train_time_s > 0


def test_a_compiled_run_compiles_once_and_evaluates_eagerly():
    """torch.compile is paid once per model: evaluations (eval mode, no labels) and snapshots use the plain
    module instead of compiling a second graph, and the first step's time (which holds the compilation) is kept."""
    from torch._dynamo.utils import counters
    torch._dynamo.reset()
    counters.clear()
    config = TrainConfig(batch_size=4, max_steps=12, eval_every=4, eval_batches=1, checkpoint_every=0,
                         compile=True)
    model, state = training.train(_model(), _blocks(), _blocks(8, seed=1), config, seed=0, progress=False)
    assert counters["stats"]["unique_graphs"] == 1 and state.graphs_compiled == 1
    assert sum("val_loss" in h for h in state.history) == 3
    assert not hasattr(model, "_orig_mod") and state.first_step_s > 0


def test_an_eager_run_compiles_no_graph():
    config = TrainConfig(batch_size=4, max_steps=3, eval_every=0, eval_batches=1, checkpoint_every=0)
    _, state = training.train(_model(), _blocks(), _blocks(8, seed=1), config, seed=0, progress=False)
    assert state.graphs_compiled == 0


def test_optimizer_decays_matrices_only_and_fuses_on_request():
    """Weight decay on the matrices, none on the norms' and other vectors; the fused and the multi-tensor
    kernels make the same update as torch's default (what the book uses on a CPU) up to rounding."""
    config = TrainConfig(lr=1e-2)
    cpu = torch.device("cpu")
    updates = []
    for choice, flags in ((None, (None, None)), (True, (True, None)), (False, (None, True))):
        model = _model()
        optimizer = training.make_optimizer(model, config, cpu, fused=choice)
        decay, no_decay = optimizer.param_groups
        assert all(p.dim() >= 2 for p in decay["params"]) and decay["weight_decay"] == config.weight_decay
        assert all(p.dim() < 2 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
        assert (decay["fused"], decay["foreach"]) == flags
        for _ in range(3):
            x = torch.from_numpy(_blocks(4).astype(np.int64))
            model(input_ids=x, labels=x).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        updates.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert all(torch.allclose(updates[0], u, atol=1e-5) for u in updates[1:])
    assert not torch.equal(updates[0], torch.cat([p.detach().flatten() for p in _model().parameters()]))


def test_the_cuda_graph_path_runs_the_same_steps(monkeypatch):
    """The loop's CUDA-graph path (torch.compile's "reduce-overhead", a step marker before each step, losses
    copied out of the graph's memory) runs on a CPU too, where torch skips the graphs: same losses and weights
    as the plain compiled path. On a GPU the same path replays the graphs (bench/train_bench.py --variants)."""
    from torch._dynamo.utils import counters
    config = TrainConfig(batch_size=4, max_steps=6, eval_every=3, eval_batches=1, checkpoint_every=0, compile=True)
    runs = []
    real_mark = torch.compiler.cudagraph_mark_step_begin
    for graphs in (False, True):
        torch._dynamo.reset()
        counters.clear()
        monkeypatch.setattr(training, "uses_cuda_graphs", lambda config, device, graphs=graphs: graphs)
        marks = []
        monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin",
                            lambda marks=marks: marks.append(1) or real_mark())
        model, state = training.train(_model(), _blocks(), _blocks(8, seed=1), config, seed=0, progress=False)
        runs.append((_params(model), [h["loss"] for h in state.history], len(marks)))
    (plain, plain_losses, plain_marks), (graphed, graphed_losses, graphed_marks) = runs
    assert plain_marks == 0 and graphed_marks == 6
    assert graphed_losses == pytest.approx(plain_losses, abs=1e-5) and len(set(graphed_losses)) == 6
    assert torch.allclose(plain, graphed, atol=1e-5)
