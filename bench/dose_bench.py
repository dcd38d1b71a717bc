"""What the calibrated ITI design costs per seed against the fixed alpha grid it replaced (issue 23, item 8).

On one model of a level (default: cpu, 10 % toxic, seed 0), the evaluations chapter 5 runs, each a cached
stage whose manifest records the wall time its build took:

- calibrated: the calibration (power-law steps on KL(base || ITI) over held-out clean text), then ToxiGen
  and capability (`ce`) at the base model, weak, mid and strong, and, on the sweep seeds only, at the
  paper's secondary alphas;
- fixed grid: ToxiGen and capability at each alpha of the old grid (0, 1, 2, 4, 8, 12: six points).

One untimed evaluation (alpha 0.5) warms the process up first; then the two designs' points are built
alternately, so that a machine whose load drifts charges both alike;
points both designs share (alpha 0 and the secondary alphas) are built once and counted in both. With
`--sweep`, the calibrations of chapter 5's K, direction and ranking sweep on this model are built too.

Per seed, chapter 5 evaluates every model of the level and, on the sweep seeds, the sweep: the old design
ran its grid and its sweep (fixed alpha) on every seed; the calibrated one runs the secondary alphas and the
sweep (each point calibrated) on the sweep seeds only. `per_seed` scales this model's measured times to
that plan: the calibrated design's cost on a sweep seed, on any other seed, and on average over the level's
seeds, against the old design's, twice: from the builds' wall times (the manifests') and from the CPU time
this process spent on each (`*_cpu_*`: the work itself, which other jobs on a shared machine inflate far
less). Run it on a cache that does not hold this model's evaluations and calibrations yet (cached ones
would read back old wall times and no CPU time). Prints one JSON line and merges it into
bench/results.json.

    python bench/dose_bench.py [--preset cpu] [--fraction 0.1] [--seed 0] [--sweep]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from toxlab.core.config import get_preset
from toxlab.evaluation import evaluate
from toxlab.interp.separability import scaled_top_k
from toxlab.pipeline import evaluation, pretraining

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record  # noqa: E402

#: Chapter 5's sweep (notebooks/05_intervention.py): directions x K at the sweep strength, and the rankings.
DIRECTIONS = ("mass_mean", "probe", "random")
K_VALUES = (1, 2, 4, 8, 16)
RANKINGS = ("val_accuracy",)  # beside the default, cv_auc
WARM_UP_ALPHA = 0.5  # in neither design


def numbers(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=numbers, default=[0, 1, 2, 4, 8, 12], help="the old design's alphas")
    parser.add_argument("--secondary", type=numbers, default=[4, 12], help="the paper's alphas beside calibration")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per level (chapter 5's frontier)")
    parser.add_argument("--sweep", action="store_true", help="also build the sweep's calibrations on this model")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    config = get_preset(args.preset).with_fraction(args.fraction)
    eval_config = evaluate.eval_preset(config.preset)
    targets = dict(evaluate.COST_TARGETS)

    for benchmark in ("ce", "toxigen"):  # warm-up, untimed: imports, the judge's first load, allocations
        evaluation.evaluate(config, args.seed, benchmark, alpha=WARM_UP_ALPHA, eval_config=eval_config, progress=False)
    start = time.process_time()
    calibration = evaluation.calibration(config, args.seed, targets=targets, progress=False)
    calibration_cpu_s = time.process_time() - start
    alphas = evaluation.calibrated_alphas(config, args.seed, targets=targets, progress=False)
    primary = {"base": 0.0, **alphas}
    secondary = {f"alpha {a:g}": a for a in args.secondary if a}
    grid = {f"alpha {a:g}": float(a) for a in args.grid}
    build_s = {}  # alpha -> build time (s) of ToxiGen generation and scoring plus the capability cost
    order = [a for pair in itertools.zip_longest(sorted({*primary.values(), *secondary.values()}),
                                                 sorted(grid.values())) for a in pair if a is not None]
    cpu_s = {}  # alpha -> the CPU seconds this process spent on that point (all threads)
    for alpha in dict.fromkeys(order):  # alternating designs, each point once
        start = time.process_time()
        build_s[alpha] = sum(evaluation.evaluate(config, args.seed, benchmark, alpha=alpha, eval_config=eval_config,
                                             progress=False).manifest["wall_s"] for benchmark in ("ce", "toxigen"))
        cpu_s[alpha] = time.process_time() - start

    calibration_s = calibration.manifest["wall_s"]
    n_heads = config.model.n_layers * config.model.n_heads
    k_default = scaled_top_k(n_heads)
    combos = [(d, k) for d in DIRECTIONS for k in K_VALUES if k <= n_heads and (d, k) != ("mass_mean", k_default)]
    rankings = list(RANKINGS)
    sweep_calibration_s = []
    sweep_calibration_cpu_s = []
    if args.sweep:
        for kw in [{"k": k, "direction": d} for d, k in combos] + [{"ranking": r} for r in rankings]:
            start = time.process_time()
            sweep_calibration_s.append(evaluation.calibration(config, args.seed, targets=targets, progress=False,
                                                          **kw).manifest["wall_s"])
            sweep_calibration_cpu_s.append(time.process_time() - start)

    models = len(pretraining.fractions_for(config))
    # The sweep: each (direction, K) but the frontier's own, and each other ranking, as one more point;
    # the calibrated design calibrates each first, the old one ran them at one fixed alpha.
    sweep_points = len(combos) + len(rankings)

    def per_seed(points: dict[float, float], calibration: float, sweep_calibration: float) -> dict[str, float]:
        """Chapter 5's evaluation time per seed (minutes) from one model's times (s): a point per alpha,
        its calibration, and a sweep calibration (the mean over the sweep's, when measured)."""
        point = float(np.mean(list(points.values())))
        per_model = {"calibrated": calibration + sum(points[a] for a in primary.values()),
                     "calibrated_sweep_seed": calibration + sum(points[a] for a in {*primary.values(),
                                                                                     *secondary.values()}),
                     "grid": sum(points[a] for a in grid.values())}
        out = {"calibrated_sweep_seed": models * per_model["calibrated_sweep_seed"]
               + sweep_points * (sweep_calibration + point),
               "calibrated_other_seed": models * per_model["calibrated"],
               "grid": models * per_model["grid"] + len(combos) * point}
        out["calibrated_mean"] = (out["calibrated_sweep_seed"]
                                  + (args.seeds - 1) * out["calibrated_other_seed"]) / args.seeds
        return {name: round(s / 60, 1) for name, s in out.items()} | {
            "ratio_mean_per_seed": round(out["calibrated_mean"] / out["grid"], 3),
            "ratio_sweep_seed": round(out["calibrated_sweep_seed"] / out["grid"], 3),
            "ratio_other_seed": round(out["calibrated_other_seed"] / out["grid"], 3)}

    def mean_or(values: list[float], default: float) -> float:
        return float(np.mean(values)) if values else default

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    record({"bench": "dose", "preset": args.preset, "device": device_name(device),
            "model": f"{args.fraction:g} toxic, seed {args.seed}", "targets": targets,
            "calibrated_alphas": {name: round(a, 3) for name, a in alphas.items()},
            "calibration_s": round(calibration_s, 1), "calibration_cpu_s": round(calibration_cpu_s, 1),
            "kl_evaluations": calibration.json("calibration.json")["evaluations"],
            "sweep_calibrations": len(sweep_calibration_s),
            "sweep_calibration_s": round(mean_or(sweep_calibration_s, calibration_s), 1),
            "sweep_calibration_cpu_s": round(mean_or(sweep_calibration_cpu_s, calibration_cpu_s), 1),
            "point_s": {f"alpha {a:g}": round(s, 1) for a, s in build_s.items()},
            "point_cpu_s": {f"alpha {a:g}": round(s, 1) for a, s in cpu_s.items()},
            "models_per_seed": models, "seeds": args.seeds, "sweep_points": sweep_points,
            "per_seed_min": per_seed(build_s, calibration_s, mean_or(sweep_calibration_s, calibration_s)),
            "per_seed_cpu_min": per_seed(cpu_s, calibration_cpu_s,
                                         mean_or(sweep_calibration_cpu_s, calibration_cpu_s)),
            "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)], "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
