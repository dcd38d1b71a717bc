"""Scoring throughput of a toxicity judge on texts of the book's generation length.

The book scores generations of 20 new tokens (toxlab.evaluation.evaluate, cpu and gpu levels). The texts timed here
are the human-written continuations of the RealToxicityPrompts sample (both files): each is the second half
of a web sentence, about 11 words (65 characters) on average, the length of those generations. (Earlier
versions timed the longer ToxiGen statements: 57 texts/s at the cpu level, which is not the length the
book scores.) The texts are distinct, so the judge's de-duplication of repeated texts gains nothing here.

Prints one JSON line and merges it into bench/results.json: `texts_per_s` (best of `--repeats` after one
warm-up call, which also loads the model), the judge, the level its MiniLM head was trained at, the device,
the texts' mean length in words and, for the MiniLM judge, in encoder tokens, and the machine's load
average over the minute before the line (on a shared machine the rate is what the cores had to spare).
The MiniLM judge of that level is trained first if it is not cached yet (minutes at the cpu level).

    python bench/judge_bench.py [--level cpu] [--judge minilm] [--texts 2000] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from toxlab.data import corpora
from toxlab.judges import encoder, minilm
from toxlab.judges import minilm as judges
from toxlab.pipeline import judging

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record  # noqa: E402

TEXTS = "RealToxicityPrompts continuations (generation length)"


def generation_length_texts(n: int) -> list[str]:
    """`n` distinct RTP continuations (seeded sample), each about as long as a 20-token generation."""
    rows = [r for name in ("rtp_toxic", "rtp_nontoxic") for r in corpora._jsonl(corpora.source_path(name))]
    texts = list(dict.fromkeys(r["continuation"]["text"] for r in rows if r["continuation"]["text"].strip()))
    return [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", default="cpu", help="smoke, cpu or gpu: the MiniLM judge's level")
    parser.add_argument("--judge", default="minilm", help=", ".join(n for n, (_, offline) in judging.JUDGES.items()
                                                                     if offline))
    parser.add_argument("--texts", type=int, default=2000, help="texts scored per repeat")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args(argv)
    if not judging.JUDGES.get(args.judge, ("", False))[1]:
        parser.error(f"--judge must be an offline judge: {', '.join(n for n, (_, o) in judges.JUDGES.items() if o)}")

    judge = judging.get_judge(args.judge, args.level)
    if isinstance(judge, minilm.MiniLMJudge):
        judge = dataclasses.replace(judge, device=args.device)
    texts = generation_length_texts(args.texts)
    judge.score(texts[:64])  # warm-up: loading the model is not scoring
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        judge.score(texts)
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    line = {"bench": "judge", "preset": args.level, "device": device_name(torch.device(args.device)),
            "judge": judge.name, "texts": len(texts), "text_kind": TEXTS,
            "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
            "texts_per_s": round(len(texts) / min(times), 1), "load_1min": round(os.getloadavg()[0], 2),
            "torch": torch.__version__}
    if isinstance(judge, minilm.MiniLMJudge):
        tokenizer, _ = encoder._encoder(args.device)
        tokens = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=judge.max_tokens)["input_ids"]]
        line.update(max_tokens=judge.max_tokens, batch_size=judge.batch_size,
                    mean_encoder_tokens=round(float(np.mean(tokens)), 1))
    record(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
