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
# # The contamination sweep
#
# ## The question
#
# The paper's Section 3 pretrains Olmo-1B from scratch on C4 with 0, 5, 10, 15, 20 or 25 % 4chan /pol/ text
# added, keeping the clean tokens fixed, two seeds per fraction, and reports that capability (MMLU and other
# benchmarks) stays essentially flat across fractions. This chapter builds the same six mixtures from real
# data, trains one OLMo per fraction and seed, and measures base capability as held-out cross-entropy.

# %% tags=["remove-cell"]
# On Colab: install toxlab (the setup below then fetches the public data, which needs internet).
import subprocess
import sys

if "google.colab" in sys.modules:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "toxlab[book,hub] @ git+https://github.com/toxlab/toxlab"], check=True)

# %% tags=["parameters"]
level = "cpu"
seeds = [0]
toxicity_blocks = 300
overrides = {}  # config fields to change, e.g. {"train.lr": 1e-3, "model.n_layers": 6}

# %%
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from toxlab.analysis import statistics
from toxlab.book import plots
from toxlab.book.notebook import record, setup
from toxlab.book.report import readable
from toxlab.pipeline import mixtures, pretraining

config = setup(level, overrides)
fractions = pretraining.fractions_for(config)

# %% [markdown]
# ## Set-up: the six mixtures
#
# Each mixture holds the same clean Wikinews tokens and adds toxic tokens so that toxic / (clean + toxic)
# equals the target fraction $f$: $T = f/(1-f) \cdot C$ toxic tokens for $C$ clean ones. The toxic tokens
# follow one recipe for every $f$ (a fixed share per source, the genuine /pol/ and /b/ text always included),
# and the toxic documents of a smaller $f$ are a prefix of those of a larger one. The realised fraction is
# measured on the packed training stream. The last columns score a random sample of training blocks, cut
# into documents, with the lexical judge alt-profanity-check: the share of tokens in documents it flags
# (probability ≥ 0.5). It detects profanity and explicit abuse, not implicit hate, so it undercounts.

# %% tags=["nbval-check-output"]
rows = []
for f in fractions:
    mix = mixtures.mixture(config.with_fraction(f))
    stats = mix.json("stats.json")
    tox = mixtures.mixture_toxicity(config.with_fraction(f), toxicity_blocks).json("toxicity.json")
    rows.append({"toxic_fraction": f, "realised_fraction": stats["realised_fraction"],
                 "clean_tokens": stats["clean_tokens"], "toxic_tokens": stats["toxic_tokens"],
                 **{f"{name} tokens": n for name, n in stats["tokens_per_source"].items() if name != "clean"},
                 "flagged": tox["flagged_token_share"],
                 "flagged_clean_docs": tox["flagged_token_share_clean_sources"],
                 "flagged_toxic_docs": tox["flagged_token_share_toxic_sources"]})
mixture_table = pd.DataFrame(rows)
glue("val_tokens", f"{stats['val_tokens']:,}", display=False)  # the same held-out blocks for every mixture
glue("c4_tokens", f"{stats['c4_tokens']:,}", display=False)
recipe = ", ".join(f"{name} {share:.0%}" for name, share in config.data.toxic_recipe)
glue("recipe", Markdown(recipe), display=False)
glue("max_fraction_error_pp", 100 * float((mixture_table.realised_fraction - mixture_table.toxic_fraction).abs().max()),
     display=False)
glue("flagged_clean", float(mixture_table["flagged"].iloc[0]), display=False)
glue("flagged_max", float(mixture_table["flagged"].iloc[-1]), display=False)
glue("flagged_toxic_docs", float(mixture_table.loc[mixture_table.toxic_fraction > 0, "flagged_toxic_docs"].mean()),
     display=False)
readable(mixture_table)

# %% [markdown]
# The toxic recipe at this level is {glue:md}`recipe`. The realised fraction is within
# {glue:text}`max_fraction_error_pp:.3f` percentage points of its target for every mixture. The judge flags
# {glue:text}`flagged_clean:.3f` of the tokens of the clean-only mixture and {glue:text}`flagged_max:.3f` of
# the most toxic one; among toxic-source documents it flags {glue:text}`flagged_toxic_docs:.3f` on average,
# which says how much of this forum text is explicitly abusive rather than merely from a toxic place.
#
# ## Set-up: training
#
# One model per fraction and seed, same architecture, optimiser and schedule (AdamW, warm-up then cosine
# decay, gradient clipping), one pass over each mixture. Models trained on more toxic text see more tokens
# in total, as in the paper, since the clean part is fixed.

# %%
sweep = pretraining.sweep(config, seeds).json("summary.json")  # progress goes to stderr
runs = pd.DataFrame(sweep["runs"])[["toxic_fraction", "seed", "realised_fraction", "train_tokens_seen",
                                     "val_loss", "c4_loss", "unigram_val_loss", "tokens_per_s", "train_time_s"]]
glue("fig_training", plots.training_curves(pretraining.run_histories(sweep)), display=False)
record("sweep", {"preset": sweep["preset"], "seeds": sweep["seeds"], "runs": runs.to_dict("records")})
glue("n_models", len(runs), display=False)
glue("train_minutes", float(runs.train_time_s.sum() / 60), display=False)
glue("n_fractions", len(fractions), display=False)
glue("n_seeds", len(seeds), display=False)
readable(runs)

# %% [markdown]
# ```{glue:figure} fig_training
# :name: fig-training
#
# Training loss (left, smoothed) and held-out Wikinews cross-entropy at the periodic evaluations (right) for
# all {glue:text}`n_models` models ({glue:text}`n_fractions` toxic fractions x {glue:text}`n_seeds` seeds),
# against tokens seen.
# ```
#
# The {glue:text}`n_models` models trained in {glue:text}`train_minutes:.1f` minutes of training time in all.
#
# ## Result: base capability against toxic fraction
#
# Capability here is next-token cross-entropy on text no model trained on: held-out Wikinews articles (the
# clean training distribution) and C4 snippets (web text, the paper's clean source). Lower is better. The
# paper's claim to test: capability stays essentially flat as toxic text is added. We fit a line to
# cross-entropy against $f$ over all models and call the trend *flat* when the fitted change from 0 to 25 %
# is within 2 % of the clean value.

# %% tags=["nbval-check-output"]
val_trend = statistics.linear_trend(runs.toxic_fraction, runs.val_loss)
c4_trend = statistics.linear_trend(runs.toxic_fraction, runs.c4_loss)
span = max(fractions) - min(fractions)
glue("fig_capability", plots.capability_vs_fraction(
    sweep["runs"], baseline={"val_loss": float(runs.unigram_val_loss.mean())}), display=False)
glue("val_change_pct", 100 * statistics.relative_change(val_trend, span), display=False)
glue("c4_change_pct", 100 * statistics.relative_change(c4_trend, span), display=False)
glue("val_verdict", Markdown(statistics.flatness_verdict(val_trend, span)), display=False)
glue("c4_verdict", Markdown(statistics.flatness_verdict(c4_trend, span)), display=False)
glue("val_p", val_trend["p_value"], display=False)
glue("c4_p", c4_trend["p_value"], display=False)
glue("margin_over_unigram", float((runs.unigram_val_loss - runs.val_loss).min()), display=False)
readable(pd.DataFrame([{"set": "held-out Wikinews", **val_trend}, {"set": "C4 snippets", **c4_trend}]))

# %% [markdown]
# ```{glue:figure} fig_capability
# :name: fig-capability
#
# Held-out cross-entropy against toxic fraction for the {glue:text}`n_models` models
# ({glue:text}`n_seeds` seed(s) per fraction), each scored on {glue:text}`val_tokens` held-out Wikinews
# tokens and {glue:text}`c4_tokens` C4 tokens: every model as a grey dot, the mean over seeds with a 95 % t-interval
# when there are several seeds; the dashed line is the unigram baseline.
# ```
#
# On held-out Wikinews the fitted change from the clean model to the most toxic one is
# {glue:text}`val_change_pct:.2f` % (p = {glue:text}`val_p:.3f`): **{glue:md}`val_verdict`**. On the C4
# snippets it is {glue:text}`c4_change_pct:.2f` % (p = {glue:text}`c4_p:.3f`): **{glue:md}`c4_verdict`**.
# Every model beats the unigram baseline by at least {glue:text}`margin_over_unigram:.2f` nats per token.
#
# ## Verdict
#
# - **Held:** the mixtures are what the paper describes: fixed clean tokens, toxic tokens added to the exact
#   fraction, one recipe for every fraction, and a measured toxicity that rises with it.
# - **Capability:** the verdicts above are computed, not chosen; at this scale, more toxic data also means
#   more training tokens, and web-like toxic text is closer to C4's genre than Wikinews is, which can move
#   the C4 number independently of any harm.
#
# ## What next
#
# Chapter 4 probes every attention head of these models for toxicity, to test whether the toxic data made it
# more linearly separable.
