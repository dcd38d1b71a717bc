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
# data, trains one OLMo per fraction and seed, and measures base capability as held-out cross-entropy. Adding
# toxic text also adds tokens, so a token-matched control (toxic text replaces clean text) is trained beside it.

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
token_matched_fractions = [0.1, 0.25]  # the control's fractions (without toxic data both designs are one model)
overrides = {}  # config fields to change, e.g. {"train.lr": 1e-3, "model.n_layers": 6}

# %%
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from toxlab.analysis import statistics, verdicts
from toxlab.book import plots
from toxlab.book.notebook import record, setup
from toxlab.book.report import readable
from toxlab.pipeline import mixtures, pretraining

config = setup(level, overrides)
fractions = pretraining.fractions_for(config)
clean = ", ".join(f"{name} {share:.0%}" for name, share in config.data.clean_recipe)
glue("clean_recipe", Markdown(clean), display=False)
glue("clean_filter", Markdown("dropped whole when it holds a word or phrase of C4's list, as C4 dropped pages"
                              if config.data.clean_filter == "c4" else "not filtered"), display=False)

# %% [markdown]
# ## Set-up: the six mixtures
#
# The clean text is web text of several registers in fixed shares ({glue:md}`clean_recipe`); each clean document
# is {glue:md}`clean_filter`. Each mixture holds the same clean tokens and adds toxic tokens so that
# toxic / (clean + toxic) equals the target fraction $f$: $T = f/(1-f) \cdot C$ toxic tokens for $C$ clean ones. The toxic tokens
# follow one recipe for every $f$ (a fixed share per source, genuine /pol/ always included),
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
                 **{f"{name} tokens": f"{n:,}" for name, n in stats["tokens_per_source"].items()
                    if name != "clean" and name not in dict(config.data.clean_recipe)},
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
glue("flagged_verdict", Markdown(verdicts.trend_sentence(
    statistics.linear_trend(mixture_table.toxic_fraction, mixture_table.flagged),
    "the share of tokens the lexical judge flags")), display=False)
readable(mixture_table)

# %% [markdown]
# The toxic recipe at this level is {glue:md}`recipe`. The realised fraction is within
# {glue:text}`max_fraction_error_pp:.3f` percentage points of its target for every mixture. The judge flags
# {glue:text}`flagged_clean:.3f` of the tokens of the clean-only mixture and {glue:text}`flagged_max:.3f` of
# the most toxic one; among toxic-source documents it flags {glue:text}`flagged_toxic_docs:.3f` on average,
# which says how much of this forum text is explicitly abusive rather than merely from a toxic place.
#
# The clean sources, as the clean-only mixture takes them: the tokens each gives, and what C4's filter removed from
# it (of every document of the source, training and held-out split alike).

# %%
clean_stats = mixtures.mixture(config.with_fraction(0.0)).json("stats.json")
filtered = clean_stats.get("clean_filter", {})
clean_table = pd.DataFrame([{"source": name, "clean_tokens": clean_stats["tokens_per_source"].get(name, 0),
                             **{k: filtered.get(name, {}).get(k, float("nan"))
                                for k in ("documents", "removed_document_share", "removed_char_share")}}
                            for name, _ in config.data.clean_recipe])
removed = {name: f"{100 * r['removed_char_share']:.0f} %" for name, r in filtered.items()}
glue("filter_removed", Markdown(", ".join(f"{share} of {name}" for name, share in removed.items())
                                if removed else "nothing (this level does not filter)"), display=False)
readable(clean_table)

# %% [markdown]
# The filter removed {glue:md}`filter_removed` (by characters). A page goes for one listed word anywhere in it,
# as in C4, so long informal pages (a Reddit thread, a long blog post) are the likeliest to go, and the informal
# text that remains is the part that never swears. What remains is judged in the mixture table's clean-document
# column above.
#
# ## Set-up: the model
#
# Every model of this chapter is a decoder of {glue:md}`model_shape`, trained on {glue:text}`clean_tokens_m:.1f` M
# clean tokens at a peak learning rate of {glue:text}`peak_lr`. The appendix (*Sizing the level*) compares this
# model with other shapes, token budgets and learning rates within the level's compute, and says whether it is the
# one that learns the most language there.

# %% tags=["remove-cell"]
glue("model_shape", Markdown(f"{config.model.n_layers} layers of width {config.model.d_model} with "
                             f"{config.model.n_heads} heads each"), display=False)
glue("clean_tokens_m", config.data.clean_tokens / 1e6, display=False)
glue("peak_lr", f"{config.train.lr:g}", display=False)

# %% [markdown]
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
# Training loss (left, smoothed) and held-out clean cross-entropy at the periodic evaluations (right) for
# all {glue:text}`n_models` models ({glue:text}`n_fractions` toxic fractions x {glue:text}`n_seeds` seeds),
# against tokens seen.
# ```
#
# The {glue:text}`n_models` models trained in {glue:text}`train_minutes:.1f` minutes of training time in all.
#
# ## Result: base capability against toxic fraction
#
# Capability here is next-token cross-entropy on text no model trained on: held-out clean documents (the
# clean training distribution) and C4 snippets (web text, the paper's clean source). Lower is better. The
# paper's claim to test: capability stays essentially flat as toxic text is added. We fit a line to
# cross-entropy against $f$ over all models and read the fitted change from the clean model to the most toxic
# one, as a share of the clean value, with its 95 % interval: the trend is *flat* when the whole interval lies
# within ±{glue:text}`flat_tolerance_pct:.0f` %, *falling* or *rising* when it lies wholly beyond that, a real
# change, *possibly beyond* flat, when it crosses the line but not zero, and *undecided* when it crosses both; a flat
# trend whose interval excludes zero is said to be a small but real change. Chapter 7 reads the paper's claim with the same tolerance.

# %% tags=["nbval-check-output"]
val_trend = statistics.linear_trend(runs.toxic_fraction, runs.val_loss)
c4_trend = statistics.linear_trend(runs.toxic_fraction, runs.c4_loss)
span = max(fractions) - min(fractions)
glue("fig_capability", plots.capability_vs_fraction(
    sweep["runs"], baseline={"val_loss": float(runs.unigram_val_loss.mean())}), display=False)
glue("val_change_pct", 100 * statistics.relative_change(val_trend, span), display=False)
glue("c4_change_pct", 100 * statistics.relative_change(c4_trend, span), display=False)
glue("flat_tolerance_pct", 100 * verdicts.FLAT_TOLERANCE, display=False)
glue("val_verdict", Markdown(verdicts.flatness_sentence(val_trend, span)), display=False)
glue("c4_verdict", Markdown(verdicts.flatness_sentence(c4_trend, span)), display=False)
glue("val_p", val_trend["p_value"], display=False)
glue("c4_p", c4_trend["p_value"], display=False)
margin = float((runs.unigram_val_loss - runs.val_loss).min())
glue("margin_over_unigram", margin, display=False)
glue("margin_lead", Markdown("Every model beats the unigram baseline by at least" if margin > 0 else
                             "Not every model beats the unigram baseline: the smallest margin is"), display=False)
readable(pd.DataFrame([{"set": "held-out clean text", **val_trend}, {"set": "C4 snippets", **c4_trend}]))

# %% [markdown]
# ```{glue:figure} fig_capability
# :name: fig-capability
#
# Held-out cross-entropy against toxic fraction for the {glue:text}`n_models` models
# ({glue:text}`n_seeds` seed(s) per fraction), each scored on {glue:text}`val_tokens` held-out clean
# tokens and {glue:text}`c4_tokens` C4 tokens: every model as a dot in its fraction's colour, the mean over
# seeds with a 95 % t-interval when there are several seeds; the dashed line is the unigram baseline.
# ```
#
# On the held-out clean text the fitted change from the clean model to the most toxic one is
# {glue:text}`val_change_pct:.2f` % (p = {glue:text}`val_p:.3f`): **{glue:md}`val_verdict`**. On the C4
# snippets it is {glue:text}`c4_change_pct:.2f` % (p = {glue:text}`c4_p:.3f`): **{glue:md}`c4_verdict`**.
# {glue:md}`margin_lead` {glue:text}`margin_over_unigram:.2f` nats per token.
#
# ## Result: the token-matched control
#
# In the paper's design the clean tokens are fixed, so a model trained on more toxic text also trains on more
# text. The control holds the total fixed instead (toxic text replaces clean text, so the 25 % model sees a quarter
# fewer clean tokens than the clean model), with the same seeds. A change of capability with $f$ that the paper's
# design shows only because its more toxic models train on more tokens is absent from the control; a trend the
# two designs share is not the token count's.

# %%
control_entries = {(design, f, seed): pretraining.pretrain(pretraining.design(config, f, token_matched), seed)
                   for f in [0.0, *token_matched_fractions] for seed in seeds
                   for design, token_matched in (("clean tokens fixed (paper)", False), ("total tokens fixed", True))}

# %% tags=["nbval-check-output"]
control_rows = []
for (design, f, seed), entry in control_entries.items():
    run = entry.json("metrics.json")
    control_rows.append({"design": design, "toxic_fraction": f, "seed": seed, "val_loss": run["val_loss"],
                         "c4_loss": run["c4_loss"], "train_tokens_seen": run["train_tokens_seen"]})
control = pd.DataFrame(control_rows)
control_trends = {design: {key: statistics.linear_trend(part.toxic_fraction, part[key]) for key in ("val_loss", "c4_loss")}
                  for design, part in control.groupby("design")}
top = max(token_matched_fractions)
for design, short in (("clean tokens fixed (paper)", "fixed_clean"), ("total tokens fixed", "fixed_total")):
    for key, name in (("val_loss", "val"), ("c4_loss", "c4")):
        glue(f"{short}_{name}_change_pct", 100 * statistics.relative_change(control_trends[design][key], top),
             display=False)
        glue(f"{short}_{name}_verdict", Markdown(verdicts.flatness_sentence(control_trends[design][key], top)),
             display=False)
glue("control_top_pct", 100 * top, display=False)
glue("n_control_models", len(control), display=False)
glue("n_control_fractions", control.toxic_fraction.nunique(), display=False)
glue("fig_control", plots.capability_vs_fraction(control.to_dict("records"), group="design"), display=False)
readable(control.groupby(["design", "toxic_fraction"], as_index=False)[["val_loss", "c4_loss", "train_tokens_seen"]]
         .mean())

# %% [markdown]
# ```{glue:figure} fig_control
# :name: fig-control
#
# Held-out cross-entropy against toxic fraction in the two designs, {glue:text}`n_control_models` model runs (each
# of {glue:text}`n_control_fractions` fractions and {glue:text}`n_seeds` seed(s) in both designs; at 0 % they are
# one model), each scored on {glue:text}`val_tokens` held-out clean tokens and {glue:text}`c4_tokens` C4 tokens:
# the mean over seeds with a 95 % t-interval.
# ```
#
# From the clean model to {glue:text}`control_top_pct:.0f` % toxic text, held-out clean cross-entropy changes by
# {glue:text}`fixed_clean_val_change_pct:.2f` % with the clean tokens fixed (**{glue:md}`fixed_clean_val_verdict`**)
# and by {glue:text}`fixed_total_val_change_pct:.2f` % with the total fixed (**{glue:md}`fixed_total_val_verdict`**);
# on the C4 snippets by {glue:text}`fixed_clean_c4_change_pct:.2f` % (**{glue:md}`fixed_clean_c4_verdict`**) and
# {glue:text}`fixed_total_c4_change_pct:.2f` % (**{glue:md}`fixed_total_c4_verdict`**).
#
# ## Verdict
#
# - **Held:** the mixtures are what the paper describes: fixed clean tokens, toxic tokens added to within
#   {glue:text}`max_fraction_error_pp:.3f` percentage points of the target fraction, and one recipe for every
#   fraction.
# - **Judged toxicity of the mixtures** (the lexical judge's flagged-token share against the fraction, one
#   mixture each): {glue:md}`flagged_verdict`.
# - **Capability:** the verdicts above are computed, not chosen. In the paper's design more toxic data also means
#   more training tokens; the token-matched control reads the trend with the tokens held fixed, and a trend
#   only the paper's design shows is the tokens', not the toxic text's. Forum text may also be closer to parts
#   of C4's web text than the clean mixture is, which can move the C4 number independently of any harm.
#
# ## What next
#
# Chapter 4 probes every attention head of these models for toxicity, to test whether the toxic data made it
# more linearly separable.
