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
# # The toy model: does a rare feature get an entangled direction?
#
# ## The question
#
# The paper's Section 2 motivates everything that follows with a small experiment. A transformer with a
# 4-dimensional residual stream learns sequences from three cyclic Markov chains over a shared 4-state
# space: 12 distinct sequences, the "features", far more than 4 dimensions can hold apart. When one chain is
# rare in the training data, its features' directions are reported to be more *entangled* (a higher maximum
# $|\cos|$ with the other features' directions) than the common ones; as the share grows the gap closes.
# An independent replication found no such effect under its choices (both groups near 0.86, about what
# random directions give). This chapter runs the experiment, states every choice the paper leaves open,
# and reports every condition tried, whether or not the effect appears.

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
toy_seeds = 10
shares = [0.01, 0.03, 0.1, 0.333]
steps = 2000
sensitivity_shares = [0.01, 0.333]
conditions = {"4,000 steps": {"steps": 4000}, "8-dimensional stream": {"d_model": 8}, "2 layers": {"n_layers": 2}}

# %%
import dataclasses

import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from toxlab.analysis import statistics
from toxlab.book import plots
from toxlab.book.notebook import setup
from toxlab.book.report import readable
from toxlab.pipeline import probing

setup(level)
baseline = probing.toy_condition(steps)
toy_seed_list = list(range(toy_seeds))

# %% [markdown]
# ## Set-up: the choices the paper leaves open
#
# Chain A steps $s \to s+1$, chain B $s \to s+2$ and chain C $s \to s+3$ (mod 4): from every state the three
# chains go to three different states, so two consecutive tokens tell which chain a sequence follows. A
# chain started from each of the 4 states gives 4 sequences; chain A is the rare one. The paper specifies the
# residual width (4), the depth (4 layers) and the measure; the rest is ours, following the replication where
# it stated a choice:

# %%
readable(pd.DataFrame([dataclasses.asdict(baseline)]).T.rename(columns={0: "baseline"}), index=True)

# %% [markdown]
# A feature's direction is read from the residual stream after the last layer, at every position after the
# first. The baseline estimator follows the one the paper is reported to use: for each current token, a
# one-vs-rest logistic probe per feature on the positions ending in that token, the normals averaged over
# tokens and renormalised. Every model is also measured with a second estimator, the mean-difference
# direction (a feature's mean activation minus the other features'), at no extra training cost. All the
# models of a condition, every share and seed, train together as one batched ensemble; each has its own
# parameters, optimiser state and data. The entanglement of a feature is its largest $|\cos|$ with any of the 11 others.
# Two references: the Welch bound, the smallest possible maximum coherence of 12 unit vectors in 4
# dimensions, and the value for random directions.
#
# ## Result: the main run

# %%
main_entry = probing.toy(baseline, shares, toy_seed_list)  # progress on stderr
main, main_rows = main_entry.json("summary.json"), main_entry.json("rows.json")

# %% tags=["nbval-check-output"]
rows = main["summary"]
glue("welch", main["welch_bound"], display=False)
glue("random_ref", main["random_reference"], display=False)
glue("n_toy_seeds", toy_seeds, display=False)
glue("toy_steps", steps, display=False)
glue("fig_toy", plots.toy_entanglement(rows, main["welch_bound"], main["random_reference"]), display=False)
rarest, equal = rows[0], rows[-1]
for name, value in {"rarest_share": rarest["share"], "rarest_rare": rarest["rare"], "rarest_control": rarest["control"],
                    "rarest_diff": rarest["difference"], "rarest_low": rarest["difference_ci"][0],
                    "rarest_high": rarest["difference_ci"][1], "rarest_p": rarest["p_value"],
                    "rarest_rare_loss": rarest["rare_chain_loss"], "rarest_control_loss": rarest["control_chain_loss"],
                    "equal_diff": equal["difference"], "equal_low": equal["difference_ci"][0],
                    "equal_high": equal["difference_ci"][1]}.items():
    glue(name, value, display=False)
main_effect = statistics.share_effect(main_rows, rarest["share"], equal["share"])
glue("main_effect", main_effect["effect"], display=False)
glue("main_effect_low", main_effect["ci"][0], display=False)
glue("main_effect_high", main_effect["ci"][1], display=False)
glue("main_effect_p", main_effect["p_value"], display=False)
table = pd.DataFrame([{"rare_share": r["share"], "rare": r["rare"], "control": r["control"],
                       "difference": r["difference"], "difference_low": r["difference_ci"][0],
                       "difference_high": r["difference_ci"][1], "p_value": r["p_value"],
                       "rare_chain_loss": r["rare_chain_loss"], "control_chain_loss": r["control_chain_loss"]}
                      for r in rows])
glue("n_toy_models", len(toy_seed_list) * len(rows), display=False)
glue("n_shares", len(rows), display=False)
readable(table)

# %% [markdown]
# ```{glue:figure} fig_toy
# :name: fig-toy
#
# Entanglement of the rare chain's four features and of the eight control features against the rare
# chain's training share: {glue:text}`n_toy_models` models ({glue:text}`n_shares` shares x
# {glue:text}`n_toy_seeds` seeds, {glue:text}`toy_steps` training steps each); mean over seeds with 95 % t bands. Dotted: the Welch bound
# ({glue:text}`welch:.3f`); dashed: random directions ({glue:text}`random_ref:.3f`).
# ```
#
# At the rarest share ({glue:text}`rarest_share:.2f`) the rare features' entanglement is
# {glue:text}`rarest_rare:.3f` against {glue:text}`rarest_control:.3f` for the controls: a difference of
# {glue:text}`rarest_diff:.3f` (95 % interval {glue:text}`rarest_low:.3f` to {glue:text}`rarest_high:.3f`,
# paired t-test p = {glue:text}`rarest_p:.3f`). At equal shares the difference is {glue:text}`equal_diff:.3f`
# (95 % interval {glue:text}`equal_low:.3f` to {glue:text}`equal_high:.3f`). It need not be zero even there:
# the three chains are not alike (chain B's sequences repeat with period 2, so its four features come in
# pairs that share every token), and chain A is always the rare one. The claim is about the share, so the
# measure of the effect is the gap at the rarest share *beyond* the gap at equal shares,
# paired by seed: {glue:text}`main_effect:.3f` (95 % interval {glue:text}`main_effect_low:.3f` to
# {glue:text}`main_effect_high:.3f`, p = {glue:text}`main_effect_p:.3f`); positive would mean the rare
# features are more entangled because they are rare.
# The loss columns check that the models learned what they were shown: after the first (ambiguous)
# transition, the next-token loss is {glue:text}`rarest_rare_loss:.3f` on the rare chain and
# {glue:text}`rarest_control_loss:.3f` on the common ones at the rarest share.
#
# ## Result: how sensitive is it to the choices?
#
# Each condition changes one choice of the baseline and runs the same seeds at the rarest and the equal
# share; the mean-difference estimator is applied to the baseline's own models.

# %%
# each condition: its models (rows.json), its summary per share and the direction estimator read
condition_rows = {"baseline": (main_rows, main["summary"], None),
                  "mean-difference directions": (main_rows, main["by_estimator"]["mean"], "mean")}
for name, changes in conditions.items():
    entry = probing.toy(probing.toy_condition(steps, changes), sensitivity_shares, toy_seed_list)
    condition_rows[name] = (entry.json("rows.json"), entry.json("summary.json")["summary"], None)

# %% tags=["nbval-check-output"]
low_share, equal_share = min(sensitivity_shares), max(sensitivity_shares)
sensitivity = {name: [r for r in summary if r["share"] in sensitivity_shares]
               for name, (_, summary, _) in condition_rows.items()}
effects = {name: statistics.share_effect(rows, low_share, equal_share, estimator)
           for name, (rows, _, estimator) in condition_rows.items()}
appears = [name for name, effect in effects.items() if effect["ci"][0] > 0]
reversed_ = [name for name, effect in effects.items() if effect["ci"][1] < 0]
glue("fig_sensitivity", plots.toy_sensitivity(sensitivity), display=False)
glue("n_conditions", len(effects), display=False)
glue("appears", Markdown(", ".join(appears) if appears else "none of them"), display=False)
glue("reversed", Markdown(", ".join(reversed_) if reversed_ else "none of them"), display=False)
glue("toy_verdict", Markdown(
    f"it appears at the rarest share in {len(appears)} of the {len(effects)} conditions we tried "
    f"({', '.join(appears)})" if appears else
    f"it did not appear under any of the {len(effects)} conditions we tried, in agreement with the independent "
    f"replication"), display=False)
glue("n_condition_models", len(toy_seed_list) * len(sensitivity_shares), display=False)
glue("n_sensitivity_shares", len(sensitivity_shares), display=False)
readable(pd.DataFrame([{"condition": name, "difference_rarest": sensitivity[name][0]["difference"],
                        "difference_equal": sensitivity[name][-1]["difference"], "effect": effect["effect"],
                        "effect_low": effect["ci"][0], "effect_high": effect["ci"][1], "p_value": effect["p_value"],
                        "rare_chain_loss": sensitivity[name][0]["rare_chain_loss"]}
                       for name, effect in effects.items()]))

# %% [markdown]
# ```{glue:figure} fig_sensitivity
# :name: fig-toy-sensitivity
#
# Rare minus control entanglement against the rare share for every one of the {glue:text}`n_conditions`
# conditions tried, each on {glue:text}`n_toy_seeds` seeds at {glue:text}`n_sensitivity_shares` shares (the
# baseline and the mean-difference estimator read the main run's models; each other condition trains
# {glue:text}`n_condition_models` of its own); mean over seeds, 95 % t intervals; points are spread slightly
# along the axis to stay readable.
# Above zero: the rare chain's features are more entangled.
# ```
#
# The effect of rarity (the rare-minus-control gap at the rarest share beyond the gap at equal shares, paired
# by seed) is significantly positive, as the paper's claim needs, in: **{glue:md}`appears`**; significantly
# negative in: **{glue:md}`reversed`** (of {glue:text}`n_conditions` conditions).
#
# ## Verdict
#
# - **The paper's toy claim** (a rare feature gets a more entangled direction): {glue:md}`toy_verdict`.
#   Every condition we ran is in the table.
# - **Caveat on the design:** the chains are not symmetric, and chain A is always the rare one; the effect
#   measure above removes the structural gap, and a design that rotates which chain is rare across seeds
#   would remove it by construction (a next step).
# - **Caveat on the measure:** with 12 features in 4 dimensions, every direction is heavily shared (compare
#   the random reference), so entanglement can move only in a narrow band; a rare feature that the model
#   barely learned (see the rare chain's loss) has a direction estimated from activations that hardly
#   separate it, which is a different thing from a learned but entangled feature.
#
# ## What next
#
# Chapter 3 leaves the toy world for real pretraining data.
