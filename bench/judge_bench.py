"""Scoring throughput of a toxicity judge on real text: the ToxiGen human-annotated statements (short,
one sentence each), the texts the judge card scores out of domain.

Prints one JSON line and merges it into bench/results.json: `texts_per_s` (best of `--repeats` after one
warm-up call, which also loads the model), the judge, the level its MiniLM head was trained at, and the
device. The MiniLM judge of that level is trained first if it is not cached yet (minutes at the cpu level).

    python bench/judge_bench.py [--level cpu] [--judge minilm] [--texts 2000] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

from toxlab import data
from toxlab import judge as judges

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", default="cpu", help="smoke, cpu or gpu: the MiniLM judge's level")
    parser.add_argument("--judge", default="minilm", help=", ".join(n for n, (_, offline) in judges.JUDGES.items()
                                                                     if offline))
    parser.add_argument("--texts", type=int, default=2000, help="ToxiGen statements scored per repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if not judges.JUDGES.get(args.judge, ("", False))[1]:
        parser.error(f"--judge must be an offline judge: {', '.join(n for n, (_, o) in judges.JUDGES.items() if o)}")

    judge = judges.get_judge(args.judge, args.level)
    if isinstance(judge, judges.MiniLMJudge):
        judge = dataclasses.replace(judge, device=args.device)
    texts = data.toxigen_probe_set(keep_ambiguous=True).texts
    texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[: args.texts]]
    judge.score(texts[:64])  # warm-up: loading the model is not scoring
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        judge.score(texts)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    line = {"bench": "judge", "preset": args.level, "device": device_name(torch.device(args.device)),
            "judge": judge.name, "texts": len(texts), "texts_per_s": round(len(texts) / min(times), 1),
            "torch": torch.__version__}
    if isinstance(judge, judges.MiniLMJudge):
        line.update(max_tokens=judge.max_tokens, batch_size=judge.batch_size)
    record(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
