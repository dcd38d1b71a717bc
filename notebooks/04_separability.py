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
# # Separability: is toxicity more linearly readable after toxic pretraining?
#
# ## The question
#
# The paper's Section 4 fits one logistic-regression probe per attention head of each pretrained model, on
# the head's output (before the output projection) at the last token of each of the 8,960 human-annotated
# ToxiGen statements, with a 4:1 train/validation split. Models pretrained with more toxic data have higher
# head accuracies and a fatter right tail. This chapter repeats that measurement on the models of chapter 3,
# adds balanced measures (ROC-AUC, balanced accuracy) beside accuracy, a residual-stream probe per layer, and
# an entanglement measure, and tests the trend with statistics rather than by eye.

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
token_matched_fractions = [0.1, 0.25]  # chapter 3's token-matched control, probed the same way
overrides = {}  # config fields to change, e.g. {"train.lr": 1e-3, "model.n_layers": 6}
pools = ["last", "mean"]  # "last": the paper's last token; "mean": mean over tokens (a documented variant)
n_boot = 1000

# %%
from dataclasses import asdict

import numpy as np
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from toxlab.analysis import probes, statistics, verdicts
from toxlab.book import plots
from toxlab.book.notebook import record, setup
from toxlab.book.report import readable
from toxlab.pipeline import pretraining, probing

config = setup(level, overrides)
fractions = pretraining.fractions_for(config)
main_pool = pools[0]

# %% [markdown]
# ## Set-up: probing every head
#
# The probe set keeps statements with a human toxicity rating above 3 (toxic) or below 3 (benign) and drops
# the ambiguous ones rated exactly 3. The split is stratified by label and target group and fixed by a
# seed, so every model is probed on the same validation statements, which lets the statistics below pair
# them. Each probe is L2-regularised logistic regression ($C = 1$), fitted for all heads at once by a
# batched Newton solve that matches scikit-learn's solution.

# %%
entries = {(f, s, pool): probing.probe(config.with_fraction(f), s, pool=pool)  # progress on stderr
           for pool in pools for f in fractions for s in seeds}

# %% tags=["nbval-check-output"]
summaries = {key: entry.json("summary.json") for key, entry in entries.items()}
first = summaries[(fractions[0], seeds[0], main_pool)]
glue("n_train", first["n_train"], display=False)
glue("n_val", first["n_val"], display=False)
glue("toxic_share", first["toxic_share_val"], display=False)
glue("majority", first["majority_baseline"], display=False)
glue("top_k", first["top_k"], display=False)
glue("n_heads", len(np.ravel(first["head_val_accuracy"])), display=False)
record("probes", [probes.headline(summaries[(f, s, main_pool)]) for f in fractions for s in seeds])
table = pd.DataFrame([asdict(probes.headline(summary)) for summary in summaries.values()])
glue("n_models", len(fractions) * len(seeds), display=False)
glue("n_fractions", len(fractions), display=False)
glue("n_seeds", len(seeds), display=False)
readable(table)

# %% [markdown]
# Each model's probes train on {glue:text}`n_train:,` statements and are scored on {glue:text}`n_val:,`, of
# which {glue:text}`toxic_share:.3f` are toxic: always answering "benign" is right
# {glue:text}`majority:.3f` of the time, so accuracy must be read against that baseline. ROC-AUC (0.5 = chance)
# does not depend on the class balance or on where the probe puts its threshold. The models have
# {glue:text}`n_heads` heads; the paper's top 30 of Olmo-1B's 256 heads scale to the top
# {glue:text}`top_k` here.
#
# ## Result: head probes per toxic fraction

# %%
acc_by_fraction = {f: [a for s in seeds for a in np.ravel(summaries[(f, s, main_pool)]["head_val_accuracy"])]
                   for f in fractions}
auc_by_fraction = {f: [a for s in seeds for a in np.ravel(summaries[(f, s, main_pool)]["head_val_auc"])]
                   for f in fractions}
glue("fig_head_auc", plots.head_metric_distributions(auc_by_fraction, "ROC-AUC", baseline=0.5), display=False)
glue("fig_head_acc", plots.head_metric_distributions(acc_by_fraction, "accuracy", baseline=first["majority_baseline"]),
     display=False)
glue("fig_heatmaps", plots.head_heatmaps(
    {f: np.asarray(summaries[(f, seeds[0], main_pool)]["head_val_auc"]) for f in fractions}, "probe ROC-AUC"),
    display=False)

# %% [markdown]
# ```{glue:figure} fig_head_acc
# :name: fig-head-acc
#
# The paper's measure: validation accuracy of every head's probe, per toxic fraction: {glue:text}`n_heads`
# heads in each of {glue:text}`n_models` models ({glue:text}`n_fractions` fractions x {glue:text}`n_seeds`
# seed(s), pooled), scored on {glue:text}`n_val:,` held-out statements, last-token activations. The dashed line
# is the accuracy of always answering "benign".
# ```
#
# ```{glue:figure} fig_head_auc
# :name: fig-head-auc
#
# The same probes ({glue:text}`n_heads` heads in each of {glue:text}`n_models` models: {glue:text}`n_fractions`
# fractions x {glue:text}`n_seeds` seed(s), pooled; {glue:text}`n_val:,` held-out statements) scored by ROC-AUC, which
# is 0.5 for a probe that has learned nothing whatever the class balance.
# ```
#
# ```{glue:figure} fig_heatmaps
# :name: fig-heatmaps
#
# Probe ROC-AUC of every head (rows: layers, columns: heads) for each of the {glue:text}`n_fractions` toxic
# fractions, one model each (seed {glue:text}`seed0`), on {glue:text}`n_val:,` held-out statements.
# ```

# %%
glue("seed0", seeds[0], display=False)
glue("fig_resid", plots.layer_curves(
    {f: [summaries[(f, s, main_pool)]["resid_val_auc"] for s in seeds] for f in fractions},
    "residual-stream probe ROC-AUC", reference=0.5, reference_label="chance"), display=False)

# %% [markdown]
# ```{glue:figure} fig_resid
# :name: fig-resid
#
# A probe on the whole residual stream after each layer (last token), per toxic fraction (mean over
# {glue:text}`n_seeds` seed(s); {glue:text}`n_models` models, {glue:text}`n_val:,` held-out statements): how much
# toxicity information the layer's output carries in all, not only in one head.
# ```
#
# ## Result: does the AUC rise with the toxic fraction? Paired bootstrap and trend test
#
# All models are probed on the same validation statements, so their differences can be bootstrapped by
# resampling those statements jointly. We report, for the mean probe AUC over all heads and for the best
# head's AUC, a 95 % interval per model, the difference between the 10 % model and the clean one (per
# seed), and a trend test over every model: the least-squares slope of the measure against the toxic
# fraction, and Spearman's rank correlation.

# %% tags=["nbval-check-output"]
tests, points = statistics.paired_statistics(
    {(f, s): entries[(f, s, main_pool)].path for f in fractions for s in seeds}, list(fractions), seeds, n_boot)
mean_points = [p for p in points if p["summary"] == "mean"]
mean_slope = next(t for t in tests if t["test"].startswith("mean head AUC: slope"))
mean_fit = statistics.linear_trend([p["toxic_fraction"] for p in mean_points], [p["auc"] for p in mean_points])
glue("slope_mean", mean_slope["estimate"] * 0.1, display=False)
glue("slope_mean_low", mean_slope["ci_low"] * 0.1, display=False)
glue("slope_mean_high", mean_slope["ci_high"] * 0.1, display=False)
glue("slope_p", mean_slope["p_one_sided"], display=False)
glue("rho_mean", mean_slope["spearman_rho"], display=False)
verdict = verdicts.trend_sentence(mean_fit, "the mean head probe AUC")
glue("verdict", Markdown(verdict), display=False)
glue("fig_auc_trend", plots.metric_vs_fraction(mean_points, {"auc": "mean head AUC (95 % bootstrap CI)"},
                                               "probe ROC-AUC"), display=False)
glue("n_boot", n_boot, display=False)
readable(pd.DataFrame(tests))

# %% [markdown]
# ```{glue:figure} fig_auc_trend
# :name: fig-auc-trend
#
# Mean probe ROC-AUC over all heads against toxic fraction, with 95 % bootstrap intervals
# ({glue:text}`n_boot:,` resamples of the {glue:text}`n_val:,` validation statements); mean over
# {glue:text}`n_seeds` seed(s) of {glue:text}`n_models` models.
# ```
#
# Per 10 percentage points of toxic data, the fitted mean head AUC changes by {glue:text}`slope_mean:.4f`
# (95 % interval {glue:text}`slope_mean_low:.4f` to {glue:text}`slope_mean_high:.4f`; one-sided
# p = {glue:text}`slope_p:.3f`; Spearman's ρ = {glue:text}`rho_mean:.2f`). The paper's claim that toxic data
# makes toxicity more linearly separable in the heads: **{glue:md}`verdict`**.
#
# ## Result: the token-matched control
#
# The models of the paper's design that saw more toxic text also saw more text. Chapter 3's control holds the total
# fixed (toxic text replaces clean text); its models are probed the same way, on the same statements. A rise in
# separability that the paper's design shows and the control does not is the extra tokens', not the toxic text's.

# %%
control_entries = {(design, f, s): probing.probe(pretraining.design(config, f, token_matched), s, pool=main_pool)
                   for f in [0.0, *token_matched_fractions] for s in seeds
                   for design, token_matched in (("clean tokens fixed (paper)", False), ("total tokens fixed", True))}

# %% tags=["nbval-check-output"]
control_rows = []
for (design, f, s), entry in control_entries.items():
    summary = entry.json("summary.json")
    control_rows.append({"design": design, "toxic_fraction": f, "seed": s,
                         "auc": float(np.mean(summary["head_val_auc"])),
                         "resid_auc": float(np.max(summary["resid_val_auc"]))})
control = pd.DataFrame(control_rows)
control_fits = {design: statistics.linear_trend(part.toxic_fraction, part.auc)
                for design, part in control.groupby("design")}
for design, short in (("clean tokens fixed (paper)", "fixed_clean"), ("total tokens fixed", "fixed_total")):
    glue(f"{short}_auc_slope", control_fits[design]["slope"] * 0.1, display=False)
    glue(f"{short}_auc_verdict", Markdown(verdicts.trend_sentence(control_fits[design], "the mean head probe AUC")),
         display=False)
glue("n_control_models", len(control), display=False)
glue("n_control_fractions", control.toxic_fraction.nunique(), display=False)
glue("fig_control_auc", plots.seeds_vs_fraction(
    control.to_dict("records"), {"auc": ("Heads", "mean head probe AUC"),
                                 "resid_auc": ("Residual stream", "best residual-stream probe AUC")}, "design"),
    display=False)
readable(control.groupby(["design", "toxic_fraction"], as_index=False)[["auc", "resid_auc"]].mean())

# %% [markdown]
# ```{glue:figure} fig_control_auc
# :name: fig-control-auc
#
# Probe ROC-AUC against toxic fraction in the paper's design and the token-matched control: every model as a
# dot, the mean over {glue:text}`n_seeds` seed(s) with a 95 % t-interval, {glue:text}`n_control_models` model runs (each of
# {glue:text}`n_control_fractions` fractions and each seed in both designs; at 0 % they are one model), scored on
# {glue:text}`n_val:,` held-out statements.
# ```
#
# Per 10 points of toxic data the mean head AUC changes by {glue:text}`fixed_clean_auc_slope:.4f` with the clean
# tokens fixed (**{glue:md}`fixed_clean_auc_verdict`**) and by {glue:text}`fixed_total_auc_slope:.4f` with the total
# fixed (**{glue:md}`fixed_total_auc_verdict`**).
#
# ## Result: entanglement
#
# Accuracy alone does not say *why* a probe does better. The paper's toy experiment argues that a rare
# feature is entangled with others; here we measure it in the real models. For every head, the toxicity
# direction is the mass-mean difference (toxic minus benign training statements, ITI's direction) and each
# of the ToxiGen target groups gets a direction of its own (its benign statements minus the other groups'
# benign statements). A head's entanglement is the largest $|\cos|$ between the toxicity direction and any
# group direction: 1 means toxicity is read along the same axis as who a statement is about.

# %%
ent_rows = [{"toxic_fraction": f, "seed": s,
             "all": summaries[(f, s, main_pool)]["entanglement"]["mean"],
             "top": summaries[(f, s, main_pool)]["entanglement"]["top_k_mean"]} for f in fractions for s in seeds]
random_ref = first["entanglement"]["random_reference"]
ent_trend = statistics.linear_trend([r["toxic_fraction"] for r in ent_rows], [r["all"] for r in ent_rows])
glue("ent_clean", float(np.mean([r["all"] for r in ent_rows if r["toxic_fraction"] == fractions[0]])), display=False)
glue("ent_max", float(np.mean([r["all"] for r in ent_rows if r["toxic_fraction"] == fractions[-1]])), display=False)
glue("ent_random", random_ref, display=False)
glue("ent_slope", ent_trend["slope"] * 0.1, display=False)
glue("ent_p", ent_trend["p_value"], display=False)
glue("ent_ci_low", ent_trend["ci_low"] * 0.1, display=False)
glue("ent_ci_high", ent_trend["ci_high"] * 0.1, display=False)
glue("ent_verdict", Markdown(verdicts.trend_sentence(ent_trend, "the mean head entanglement", rising=False)),
     display=False)
glue("n_groups", len(first["groups"]), display=False)
glue("fig_entanglement", plots.metric_vs_fraction(
    ent_rows, {"all": "all heads", "top": "top-k heads"}, "max |cos| with a group direction",
    reference=random_ref, reference_label="random directions"), display=False)

# %% [markdown]
# ```{glue:figure} fig_entanglement
# :name: fig-entanglement
#
# Entanglement of the toxicity direction with the {glue:text}`n_groups` target-group directions, averaged
# over all {glue:text}`n_heads` heads and over the top-k heads, against toxic fraction (mean over
# {glue:text}`n_seeds` seed(s); {glue:text}`n_models` models, directions from {glue:text}`n_train:,` training
# statements). The dashed line is the value for random directions of the same dimension.
# ```
#
# Averaged over heads, entanglement is {glue:text}`ent_clean:.3f` for the clean model and
# {glue:text}`ent_max:.3f` for the most toxic one (random directions: {glue:text}`ent_random:.3f`); the fitted
# change per 10 points of toxic data is {glue:text}`ent_slope:.4f` (95 % interval {glue:text}`ent_ci_low:.4f` to
# {glue:text}`ent_ci_high:.4f`, two-sided p = {glue:text}`ent_p:.3f`). The paper argues that more toxic data makes
# the toxicity direction less entangled, a fall; on these models that **{glue:md}`ent_verdict`**. Chapter 7 reads
# the claim by its fixed rule on the heads ITI shifts (the top-K), beside the others.
#
# ## Result: the mean-pooled variant
#
# At small scale the last token of a statement may carry little of what the statement says; averaging the
# head outputs over all tokens is a documented variant (not the paper's).

# %%
last_pool = table[table.pool == main_pool]
glue("last_pool_auc", float(last_pool.head_auc_mean.mean()), display=False)
glue("best_head_auc", float(last_pool.head_auc_max.max()), display=False)
glue("accuracy_over_majority", float((last_pool.head_accuracy_mean - last_pool.majority_rate).mean()), display=False)
if "mean" in pools:
    variant = table[table.pool == "mean"][["toxic_fraction", "seed", "head_auc_mean", "head_auc_max", "resid_auc_max",
                                           "entanglement_mean"]]
    glue("mean_pool_auc", float(variant.head_auc_mean.mean()), display=False)
else:
    variant = pd.DataFrame()
    glue("mean_pool_auc", float("nan"), display=False)
readable(variant)

# %% [markdown]
# Over all models the mean head AUC is {glue:text}`last_pool_auc:.3f` at the last token and
# {glue:text}`mean_pool_auc:.3f` with mean pooling.
#
# ## Verdict
#
# - **The paper's claim** (toxic pretraining makes toxicity more linearly separable in the heads):
#   {glue:md}`verdict`. The numbers are those above; the effect size the paper reports comes from models
#   of a billion parameters trained on twenty billion tokens.
# - **Signal strength:** read any difference between fractions against how much the heads carry at all: over
#   all models the mean head AUC is {glue:text}`last_pool_auc:.3f` and the best head's
#   {glue:text}`best_head_auc:.3f` (chance: 0.5), and the mean head accuracy sits
#   {glue:text}`accuracy_over_majority:+.3f` from the majority-class rate. The nearer these are to chance, the
#   less any fraction can show.
# - **Entanglement** is measured, not inferred: see the figure above for how much the toxicity direction
#   shares with the target-group directions, against random directions.
#
# ## What next
#
# Chapter 5 uses these probes to steer generation with ITI.
