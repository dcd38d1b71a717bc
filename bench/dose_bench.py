"""What the calibrated ITI design costs per model against the fixed alpha grid it replaced (issue 23, item 8).

On one model of a level (default: cpu, 10 % toxic, seed 0), the evaluations chapter 5 runs per model, each a
cached stage whose manifest records the wall time its build took:

- calibrated: the calibration (bisection on KL(base || ITI) over held-out clean text), then ToxiGen and
  capability (`ce`) at the base model, weak, mid and strong, and at the paper's secondary alphas;
- fixed grid: ToxiGen and capability at each alpha of the old grid (0, 1, 2, 4, 8, 12: as many points).

Points both designs share (alpha 0 and the secondary alphas) are built once and counted in both. The stages
run through the cache (`TOXLAB_CACHE`), so a second run reads the build times back instead of recomputing;
run it on a quiet machine for numbers worth quoting (the load average is recorded). Prints one JSON line and
merges it into bench/results.json: `calibrated_s`, `grid_s`, their ratio, the calibration's own time and its
number of KL evaluations, and `per_seed_*`: the same scaled to the level's six models.

    python bench/dose_bench.py [--preset cpu] [--fraction 0.1] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from toxlab.core.config import get_preset
from toxlab.evaluation import evaluate
from toxlab.pipeline import evaluation, pretraining

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record  # noqa: E402


def numbers(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=numbers, default=[0, 1, 2, 4, 8, 12], help="the old design's alphas")
    parser.add_argument("--secondary", type=numbers, default=[4, 12], help="the paper's alphas beside calibration")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()[0]
    config = get_preset(args.preset).with_fraction(args.fraction)
    eval_config = evaluate.eval_preset(config.preset)
    targets = dict(evaluate.COST_TARGETS)
    calibration = evaluation.calibration(config, args.seed, targets=targets, progress=False)
    alphas = evaluation.calibrated_alphas(config, args.seed, targets=targets, progress=False)

    calibrated_points = {"base": 0.0, **alphas, **{f"alpha {a:g}": a for a in args.secondary if a}}
    grid_points = {f"alpha {a:g}": float(a) for a in args.grid}
    build_s = {}  # (benchmark, alpha) -> the build time (s) of that evaluation
    for benchmark in ("ce", "toxigen"):  # capability first: it needs no judge
        for alpha in sorted({*calibrated_points.values(), *grid_points.values()}):
            build_s[(benchmark, alpha)] = evaluation.evaluate(config, args.seed, benchmark, alpha=alpha,
                                                          eval_config=eval_config, progress=False).manifest["wall_s"]

    def point_s(alpha: float) -> float:
        """The build time (s) of one point: ToxiGen generation and scoring plus the capability cost."""
        return build_s[("toxigen", alpha)] + build_s[("ce", alpha)]

    calibration_s = calibration.manifest["wall_s"]
    calibrated = {name: point_s(alpha) for name, alpha in calibrated_points.items()}
    grid = {name: point_s(alpha) for name, alpha in grid_points.items()}
    calibrated_s = calibration_s + sum(calibrated.values())
    grid_s = sum(grid.values())
    models = len(pretraining.fractions_for(config))
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    record({"bench": "dose", "preset": args.preset, "device": device_name(device),
            "model": f"{args.fraction:g} toxic, seed {args.seed}", "targets": targets,
            "calibration_s": round(calibration_s, 1),
            "kl_evaluations": calibration.json("calibration.json")["evaluations"],
            "calibrated_points": len(calibrated), "grid_points": len(grid),
            "point_s": {name: round(s, 1) for name, s in {**calibrated, **grid}.items()},
            "calibrated_s": round(calibrated_s, 1), "grid_s": round(grid_s, 1),
            "ratio": round(calibrated_s / grid_s, 3), "models_per_seed": models,
            "per_seed_calibrated_min": round(models * calibrated_s / 60, 1),
            "per_seed_grid_min": round(models * grid_s / 60, 1),
            "load_avg": [round(load_before, 2), round(os.getloadavg()[0], 2)], "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main())
