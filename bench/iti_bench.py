"""Generation throughput with and without ITI, side by side in one run.

A model of the preset's shape (random weights: throughput does not depend on what the model learned)
generates `--new-tokens` tokens for a batch of prompts, greedily, with the KV cache, alternately without
and with an ITI on the preset's scaled top-K heads (K = 30/256 of the heads), `--repeats` times each.
Prints one JSON line and merges it into bench/results.json: `tokens_per_s` and `tokens_per_s_iti`
(best of the repeats) and `overhead_pct` = 100 x (time with ITI / time without - 1). Target: at most 5 %.

    python bench/iti_bench.py [--preset cpu] [--batch 64] [--new-tokens 32]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from toxlab.core.config import get_preset
from toxlab.data.tokenizer import train_tokenizer
from toxlab.evaluation.evaluate import EvalConfig, generate
from toxlab.interp.intervene import ITI
from toxlab.interp.separability import scaled_top_k
from toxlab.model.decoder import build_model, pick_device

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record, sync  # noqa: E402

WORDS = "the council opened a new bridge over the river while volunteers restored the old library".split()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    config = get_preset(args.preset)
    m = config.model
    device = pick_device()
    g = torch.Generator().manual_seed(0)
    texts = [" ".join(WORDS[i] for i in torch.randint(len(WORDS), (24,), generator=g)) for _ in range(args.batch)]
    tok = train_tokenizer(texts * 4, config.tokenizer.__class__(vocab_size=512, train_chars=100_000))
    model = build_model(m, config.tokenizer.vocab_size, config.data.seq_len, tok.eos_token_id, tok.pad_token_id,
                        seed=0).to(device).eval()
    k = scaled_top_k(m.n_layers * m.n_heads)
    heads = tuple((i % m.n_layers, (i * 3) % m.n_heads) for i in range(k))  # spread over layers, as ITI's are
    iti = ITI(heads=heads, directions=torch.nn.functional.normalize(torch.randn(k, m.head_dim, generator=g), dim=1),
              sigmas=torch.ones(k), alpha=4.0, direction="random", shape=(m.n_layers, m.n_heads, m.head_dim))
    eval_config = EvalConfig(max_new_tokens=args.new_tokens, batch_size=args.batch, max_prompt_tokens=32)

    def run(edit):
        sync(device)
        start = time.perf_counter()
        generate(model, tok, texts, 1, eval_config, seed=0, iti=edit, do_sample=False)
        sync(device)
        return time.perf_counter() - start

    run(None), run(iti)  # warm-up
    plain, edited = [], []
    for _ in range(args.repeats):  # alternate, so that drifts in machine load hit both sides alike
        plain.append(run(None))
        edited.append(run(iti))
    tokens = args.batch * args.new_tokens
    record({"bench": "iti", "preset": args.preset, "device": device_name(device), "k": k, "batch": args.batch,
            "new_tokens": args.new_tokens, "tokens_per_s": round(tokens / min(plain), 1),
            "tokens_per_s_iti": round(tokens / min(edited), 1),
            "overhead_pct": round(100 * (min(edited) / min(plain) - 1), 2)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
