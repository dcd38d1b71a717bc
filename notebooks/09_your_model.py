# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Appendix: apply it to your model
#
# ## The question
#
# The book's instruments (a probe on every attention head, Inference-Time Intervention on the heads the probes
# rank best, and the toxicity and capability benchmarks) are most useful on checkpoints the reader brings: for
# example public models trained with and without toxicity filtering. This appendix asks two questions. Do
# the instruments run on a Hugging Face causal LM that toxlab did not build, through `--model`? And does that
# path measure what the book's own path measures, when both are given the same model? The only checkpoints
# available offline are the book's, so the model here is one the book trained (the
# {glue:text}`fraction_pct:.0f` % toxic model of the first seed at this level), handed over as a plain
# `save_pretrained` folder, as a reader would hand over theirs.
#
# ```{warning}
# Content warning: the benchmarks prompt the model with hateful statements and score what it writes. This
# chapter shows only scores.
# ```

# %% tags=["remove-cell"]
# On Colab: install toxlab (the setup below then fetches the public data, which needs internet).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "toxlab[book,hub] @ git+https://github.com/toxlab/toxlab"], check=True)

# %% tags=["parameters"]
level = "cpu"
seeds = [0]  # the book's model of the first seed is the one handed over
toxic_fraction = 0.1
alpha = 12.0  # the paper's strong ITI

# %%
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from toxlab.book.notebook import setup
from toxlab.book.report import readable
from toxlab.pipeline import evaluation, external, pretraining, probing

config = setup(level).with_fraction(toxic_fraction)
seed = seeds[0]
folder = pretraining.pretrain(config, seed).file("model")  # the book's checkpoint: weights, config and tokenizer
model = external.resolve_model(folder)  # as `--model DIR` resolves it: files hashed, architecture checked
n_layers, n_heads = model.heads
glue("family", Markdown(model.family), display=False)
glue("n_layers", n_layers, display=False)
glue("n_heads", n_heads, display=False)
glue("fraction_pct", 100 * toxic_fraction, display=False)

# %% tags=["remove-cell"]
# Every result this chapter reads, computed here (progress goes to stderr), so the checked cells below only read
# them: on both paths, the probes and each benchmark without and with ITI.
probes = {"--model DIR": external.probe(model), "the book (chapter 4)": probing.probe(config, seed)}
evaluations = {(benchmark, strength): {
    "--model DIR": external.evaluate(model, benchmark, strength, level=level, seed=seed),
    "the book (chapters 5-6)": evaluation.evaluate(config, seed, benchmark, strength)}
    for benchmark in ("toxigen", "ce") for strength in (0.0, alpha)}

# %% [markdown]
# ## Set-up: a model by its folder, results by its weights
#
# `--model` takes a `save_pretrained` folder, or a hub name for readers with internet (fetched once into the
# Hugging Face cache). The model keeps its own tokenizer. Its architecture must have a row in
# `toxlab.model.adapters`, which says where its decoder layers, its attention output projection (whose input is
# every head's output, the paper's probe and ITI site) and its head count live: OLMo and OLMo-2,
# Llama, Mistral and Qwen, GPT-2, and GPT-NeoX (Pythia). Any other architecture stops with one line naming
# these and how to add a row. Results are cached under the SHA-256 of the model's weight, config and tokenizer
# files, not under its name: the same weights in another folder reuse them, new weights in the same folder do
# not. The model here is a {glue:md}`family` model with {glue:text}`n_layers` layers of
# {glue:text}`n_heads` heads, the {glue:text}`fraction_pct:.0f` % toxic model of the book's first seed:

# %%
readable(pd.DataFrame([{"model_type": model.model_type, "adapter": model.family, "n_layers": n_layers,
                        "n_heads": n_heads, **{f"SHA-256 of {name}": digest[:16] for name, digest in model.weights.items()}}]))

# %% [markdown]
# On a public model, a reader runs the same steps from the command line:
#
# ```bash
# toxlab probe --model EleutherAI/pythia-160m                  # a probe on every head (chapter 4)
# toxlab evaluate --model EleutherAI/pythia-160m --benchmark toxigen --strength weak   # ITI at a KL cost
# toxlab evaluate --model EleutherAI/pythia-160m --benchmark toxigen --alpha 12        # or at the paper's alpha
# toxlab evaluate --model EleutherAI/pythia-160m --benchmark ce --alpha 12             # its capability cost
# toxlab evaluate --model ./my-checkpoint --benchmark toxigen --direction leace --alpha 1   # LEACE instead
# ```
#
# `--preset` (`smoke`, `cpu` by default, `gpu`) sets the sample sizes, the judge and the held-out text; each
# command prints its result's path last, and each `evaluate` entry keeps the fitted intervention in `iti/`. In
# Python the same steps are `external.resolve_model(name)`, `external.probe`, `external.fitted_iti` (or
# `fitted_erasure`) and `external.evaluate`, and an intervention is applied to the model inside
# `with toxlab.interp.intervene.applied(model, iti): ...`.
#
# ## Result: the probes

# %% tags=["nbval-check-output"]
ours, book = (entry.json("summary.json") for entry in probes.values())
probe_gap = max(abs(a - b) for row_a, row_b in zip(ours["head_val_auc"], book["head_val_auc"])
                for a, b in zip(row_a, row_b))
glue("probe_gap", probe_gap, display=False)
glue("auc_max", ours["heads"]["val_auc"]["max"], display=False)  # floats from JSON
glue("auc_mean", ours["heads"]["val_auc"]["mean"], display=False)
glue("majority", ours["majority_baseline"], display=False)
glue("same_top_heads", Markdown("the same" if ours["top_heads"] == book["top_heads"] else "different"), display=False)
readable(pd.DataFrame([{"path": name, "majority_rate": s["majority_baseline"],
                        "accuracy": s["heads"]["val_accuracy"]["mean"],
                        "auc": s["heads"]["val_auc"]["mean"], "auc_max": s["heads"]["val_auc"]["max"],
                        "cv_auc_top": s["heads"]["cv_auc"]["top_k_mean"]} for name, s in zip(probes, (ours, book))]))

# %% [markdown]
# Through `--model`, the per-head probes reach a mean validation ROC-AUC of {glue:text}`auc_mean:.3f` and
# at best {glue:text}`auc_max:.3f` (majority baseline {glue:text}`majority:.3f`). Head by head, their
# ROC-AUC differs from the book's own probes of this model by at most {glue:text}`probe_gap:.2g`, and ITI
# chooses {glue:md}`same_top_heads` top heads on both paths.
#
# ## Result: ITI and the benchmarks

# %% tags=["nbval-check-output"]
rows = []
for (benchmark, strength), by_path in evaluations.items():
    for name, entry in by_path.items():
        result = entry.json("result.json")
        rows.append({"benchmark": benchmark, "alpha": f"{strength:g}", "path": name,
                     "value": 100 * result["all"]["mean_toxicity"] if benchmark == "toxigen"  # x 100, as in ch. 6
                     else result["clean"]["ce"] - result["clean"]["ce_base"],
                     "heads shifted": result["k"]})
table = pd.DataFrame(rows)
wide = table.pivot_table(index=["benchmark", "alpha"], columns="path", values="value")
iti_gap = float((wide["--model DIR"] - wide["the book (chapters 5-6)"]).abs().max())
toxicity = wide.loc["toxigen", "--model DIR"]  # by alpha
glue("iti_gap", iti_gap, display=False)
glue("alpha", alpha, display=False)
glue("k", int(table["heads shifted"].max()), display=False)
glue("tox_base", float(toxicity["0"]), display=False)
glue("tox_iti", float(toxicity[f"{alpha:g}"]), display=False)
glue("ce_cost", float(wide.loc["ce", "--model DIR"][f"{alpha:g}"]), display=False)
glue("iti_verdict", Markdown("gives the book's numbers" if iti_gap == 0 and probe_gap == 0
                             else f"differs from the book's numbers by up to {max(iti_gap, probe_gap):.2g}"),
     display=False)
readable(wide.rename(index={"toxigen": "ToxiGen toxicity (x 100)", "ce": "CE rise (nats/token)"}), index=True,
         caption="ToxiGen toxicity (mean judge score x 100) and the rise in clean cross-entropy, per path")

# %% [markdown]
# The benchmarks through `--model`, at the paper's strong alpha = {glue:text}`alpha:g`, shifting the heads the
# probes rank best (k = {glue:text}`k`): ToxiGen toxicity (x 100, as in chapter 6) {glue:text}`tox_base:.1f`
# without ITI and {glue:text}`tox_iti:.1f` with it, for a rise in clean cross-entropy of {glue:text}`ce_cost:.3f`
# nats/token. Every number differs from the book's own path by at most {glue:text}`iti_gap:.2g`.
#
# ## Verdict
#
# - **Against the book's path:** on a model handed over as a plain folder, with its own tokenizer, the
#   `--model` path {glue:md}`iti_verdict` (the probes' ROC-AUCs, the judge's scores of the generations and
#   the held-out cross-entropy, with and without ITI), and ITI shifts {glue:md}`same_top_heads` heads on both
#   paths. The hooks, the bias fold and generation with left padding and the KV
#   cache are tested on a tiny random model of every family the adapters cover (tests/test_adapters.py):
#   alpha = 0 changes nothing, a shift moves exactly its head, the folded bias equals the hook form (GPT-2's
#   transposed Conv1D weight included; OLMo, Llama, Mistral and Qwen get a bias for the duration of the
#   intervention, since they have none), and a left-padded prompt generates what it generates alone.
# - **Did not (here):** no public checkpoint is run in this book, since it builds offline; whether the
#   paper's effect shows in public models trained with and without filtering is the reader's experiment.
#   Text is fed without special tokens, as the book's models were trained; models trained to expect a
#   beginning-of-text token may probe better with one.
#
# ## What next
#
# Run the commands above on pairs of public checkpoints (for example Pythia trained on the Pile and on the
# deduplicated Pile, or OLMo checkpoints along training), and compare their probe distributions and their
# toxicity at a matched capability cost as chapters 4 to 6 do. A family without an adapter takes one row in
# `toxlab.model.adapters` and a tiny config in tests/test_adapters.py.
