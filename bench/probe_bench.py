"""Batched probes against a per-head scikit-learn loop, on the same data, split and device.

Uses the cpu preset's cached last-token head activations of the clean model when they exist (run
`toxlab probe --preset cpu --toxic-fraction 0 --seed 0` first), else random activations of the same shape
with a planted signal. Both sides compute the same outputs per head (probe, validation accuracy and
ROC-AUC, mass-mean direction and the spread along it). Prints one JSON line and merges it into
bench/results.json: `speedup` (loop time / batched time, each the best of `--repeats` after one warm-up
run), `max_accuracy_diff` (largest per-head validation accuracy difference).

    python bench/probe_bench.py [--preset cpu] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from toxlab.core import artifacts
from toxlab.core.config import get_preset
from toxlab.core.errors import ToxlabError
from toxlab.data import corpora
from toxlab.interp.probe import fit_probes, logistic_newton, with_intercept
from toxlab.pipeline import probing

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record, sync  # noqa: E402


def cached_activations(preset: str) -> tuple[torch.Tensor, torch.Tensor, list[str], str]:
    """[N, L, H, Dh] activations, labels and groups: the cached real ones if present, else planted."""
    config = get_preset(preset).with_fraction(0.0)
    try:
        with artifacts.lookup_only():
            entry = probing.activations(config, seed=0, pool="last", progress=False)
    except ToxlabError:  # no data or nothing cached: synthetic activations instead
        entry = None
    if entry is not None:
        from safetensors.torch import load_file
        tensors = load_file(entry.file("activations.safetensors"))
        return tensors["head_out"].float(), tensors["labels"], entry.json("groups.json"), "cached cpu activations"
    m = config.model
    g = torch.Generator().manual_seed(0)
    n = 8592
    labels = (torch.rand(n, generator=g) < 0.35).long()
    x = torch.randn(n, m.n_layers, m.n_heads, m.head_dim, generator=g)
    x[:, 1, 0, 0] += labels
    return x, labels, [str(i % 13) for i in range(n)], "synthetic activations of the preset's shape"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    device = torch.device(args.device)

    x, labels, groups, source = cached_activations(args.preset)
    train, val = corpora.stratified_split(labels.numpy(), groups, seed=0)
    xt, yt, xv, yv = x[train], labels[train], x[val], labels[val]
    n_layers, n_heads = x.shape[1:3]

    def batched_fit():
        return fit_probes(xt.to(device), yt.to(device), xv.to(device), yv.to(device))

    def sklearn_loop():
        """The same outputs per head as `fit_probes`: probe, validation accuracy and AUC, mass mean, sigma."""
        accuracy = np.zeros((n_layers, n_heads))
        toxic = yt.numpy() == 1
        for layer in range(n_layers):
            for head in range(n_heads):
                train_x, val_x = xt[:, layer, head].numpy(), xv[:, layer, head].numpy()
                fit = LogisticRegression(C=1.0, max_iter=1000).fit(train_x, yt.numpy())
                accuracy[layer, head] = fit.score(val_x, yv.numpy())
                roc_auc_score(yv.numpy(), fit.decision_function(val_x))
                mass_mean = train_x[toxic].mean(0) - train_x[~toxic].mean(0)
                np.std(train_x @ (mass_mean / np.linalg.norm(mass_mean)), ddof=1)
        return accuracy

    def best_time(run):  # one untimed warm-up run (allocator and thread pools), then the best of the repeats
        run()
        times = []
        for _ in range(args.repeats):
            sync(device)
            start = time.perf_counter()
            result = run()
            sync(device)
            times.append(time.perf_counter() - start)
        return min(times), result

    batched, probes = best_time(batched_fit)
    newton = {}  # the Newton iterations of the same fit fit_probes makes, counted outside the timing
    logistic_newton(with_intercept(xt.reshape(len(xt), -1, xt.shape[-1]).to(device)), yt.to(device), 1.0, stats=newton)
    loop, accuracy = best_time(sklearn_loop)

    record({"bench": "probe", "preset": args.preset, "device": device_name(device), "data": source,
            "heads": int(n_layers * n_heads), "train_examples": len(train),
            "batched_s": round(batched, 4), "newton_iterations": newton["iterations"],
            "sklearn_loop_s": round(loop, 4), "loop_device": "cpu (scikit-learn)",
            "speedup": round(loop / batched, 2),
            "max_accuracy_diff": round(float(np.abs(accuracy - probes.val_accuracy.cpu().numpy()).max()), 4)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
