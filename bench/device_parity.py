"""The CPU path and the GPU path give the same results on a tiny model (the gpu level's parity check).

A tiny OLMo is trained for a few seconds on the CPU on planted text (sentences with and without a marker
word), then copied to each device, where the script computes, in fp32: next-token logits on a fixed batch,
greedy generations with the KV cache, and per-head probe accuracies (activations captured and probes fitted
on that device). It prints one JSON line with the largest logit difference, the share of identical
generations and the largest probe-accuracy difference against the first device, and whether each is
within tolerance; it exits 1 if one is not.

    python bench/device_parity.py                 # cpu against cuda when a GPU is present
    python bench/device_parity.py --devices cpu cpu  # the code path alone (CI)
"""

from __future__ import annotations

import argparse
import json
import random
import sys

import numpy as np
import torch

from toxlab.core.config import ModelConfig, TokenizerConfig, TrainConfig
from toxlab.data.tokenizer import train_tokenizer
from toxlab.evaluation.evaluate import EvalConfig, generate
from toxlab.interp import hooks
from toxlab.interp.probe import fit_probes
from toxlab.model import train as training
from toxlab.model.decoder import build_model

TOLERANCE = {"max_logit_diff": 1e-3, "generation_match": 0.9, "max_accuracy_diff": 0.02}
SUBJECTS = "the council a teacher the river my neighbour the market our team".split(" ")
VERBS = "opened closed visited praised crossed built painted moved".split()
OBJECTS = "the bridge a library the park an old school the station a garden".split(" ")


def _texts(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Sentences; label 1 carries the marker word 'awful' (the planted concept)."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        if i % 2:
            words.insert(rng.randrange(1, 3), "awful")
        texts.append(" ".join(words) + ".")
        labels.append(i % 2)
    return texts, np.asarray(labels)


def tiny_model(seed: int = 0):
    texts, _ = _texts(600, seed)
    tok = train_tokenizer(texts, TokenizerConfig(vocab_size=256, train_chars=50_000))
    ids = [i for t in texts for i in tok(t)["input_ids"] + [tok.eos_token_id]]
    seq = 32
    blocks = np.asarray(ids[: len(ids) // seq * seq], dtype=np.uint16).reshape(-1, seq)
    model = build_model(ModelConfig(n_layers=2, d_model=64, n_heads=4, d_mlp=128), len(tok), 64,
                        tok.eos_token_id, tok.pad_token_id, seed=seed)
    config = TrainConfig(batch_size=16, epochs=3.0, lr=3e-3, eval_every=0, checkpoint_every=0, precision="fp32")
    model, _ = training.train(model, blocks, blocks[:4], config, seed, progress=False)
    return model.eval(), tok


def outputs(model, tok, device: str) -> dict:
    model = model.to(device)
    prompts, _ = _texts(16, seed=1)
    prompts = [" ".join(p.split()[:2]) for p in prompts]
    batch = tok(prompts, return_tensors="pt", padding=True, padding_side="left").to(device)
    with torch.no_grad():
        logits = model(**batch).logits.float().cpu()
    eval_config = EvalConfig(max_new_tokens=12, batch_size=16, max_prompt_tokens=16)
    generations = [s[0] for s in generate(model, tok, prompts, 1, eval_config, seed=0, do_sample=False)]
    texts, labels = _texts(400, seed=2)
    acts = hooks.capture(model, tok, texts, ("head_out",), "last")["head_out"].to(device)  # [N, L, H, Dh]
    y = torch.from_numpy(labels).to(device)
    probes = fit_probes(acts[:300], y[:300], acts[300:], y[300:])
    return {"logits": logits, "generations": generations, "accuracy": probes.val_accuracy.float().cpu()}


def parity(devices: list[str]) -> dict:
    torch.backends.cuda.matmul.allow_tf32 = False  # compare fp32 with fp32
    torch.backends.cudnn.allow_tf32 = False
    model, tok = tiny_model()
    first, second = devices
    a, b = outputs(model, tok, first), outputs(model, tok, second)  # the same device twice: two runs
    line = {"bench": "device_parity", "devices": [first, second],
            "max_logit_diff": float((a["logits"] - b["logits"]).abs().max()),
            "generation_match": float(np.mean([x == y for x, y in zip(a["generations"], b["generations"])])),
            "max_accuracy_diff": float((a["accuracy"] - b["accuracy"]).abs().max()),
            "probe_accuracy_max": float(a["accuracy"].max())}
    line["ok"] = (line["max_logit_diff"] <= TOLERANCE["max_logit_diff"]
                  and line["generation_match"] >= TOLERANCE["generation_match"]
                  and line["max_accuracy_diff"] <= TOLERANCE["max_accuracy_diff"])
    return line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", nargs=2, default=["cpu", "cuda" if torch.cuda.is_available() else "cpu"])
    args = parser.parse_args(argv)
    line = parity(args.devices)
    print(json.dumps(line), flush=True)
    return 0 if line["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
