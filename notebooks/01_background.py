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
# # Background: why a model might need to see bad data
#
# ## The question
#
# *When Bad Data Leads to Good Models* (Li, Chen, Viégas and Wattenberg, ICML 2025) questions a default of
# language-model training: that toxic text should be filtered out of the pretraining data. This chapter sets
# out the pipeline the question lives in, the handful of ideas the paper's argument rests on, and what this
# book re-runs, at what scale and on which data.

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
overrides = {}  # config fields to change, e.g. {"train.lr": 1e-3, "model.n_layers": 6}

# %%
import dataclasses
import math

import pandas as pd
import torch
from IPython.display import Markdown
from myst_nb import glue

from toxlab.analysis import sources
from toxlab.book import plots
from toxlab.book.notebook import setup
from toxlab.book.report import readable
from toxlab.pipeline import mixtures, pretraining

config = setup(level, overrides)
seed = seeds[0]

# %% [markdown]
# ## Set-up: the pipeline
#
# A modern assistant is made in three stages:
#
# | stage | data | what it teaches |
# |---|---|---|
# | **pretraining** | trillions of tokens of web text, books, code | to predict the next token: language, facts, and every style of writing in the data, toxic ones included |
# | **supervised fine-tuning (SFT)** | tens of thousands of curated prompt-response pairs | to follow instructions in the format of an assistant |
# | **alignment by reinforcement learning** (RLHF, DPO) | human or AI preferences between responses | to prefer helpful, harmless answers |
#
# Toxicity is usually handled at both ends: filtered out of the pretraining data, and trained away in
# post-training. The paper asks whether the first habit undermines the second.
#
# ## Set-up: key ideas
#
# **Transformer and activation space.** A decoder-only transformer turns each token into a vector (the
# *residual stream*, of width $d$) and refines it through $L$ layers of attention and MLP blocks. Each
# attention layer has $H$ heads; head $h$ of layer $l$ writes a vector $x_{l,h} \in \mathbb{R}^{d/H}$ that an
# output projection adds back into the stream. Everything the model "knows" about a text at a position is in
# these activations.
#
# **Feature representation and superposition.** A model represents many more concepts than it has
# dimensions, so concepts share directions; a concept's direction can overlap (be *entangled*) with others.
# The paper's toy experiment (its Section 2) argues that a concept that is rare in the
# training data ends up more entangled.
#
# **Data contamination.** Here the "contaminant" is toxic text: hateful, obscene or harassing writing. The
# paper trains the same model on clean text with 0, 5, 10, 15, 20 or 25 % toxic text added.
#
# **Linear separability.** If toxic and non-toxic inputs can be told apart by a linear function of a head's
# activations, a logistic-regression *probe* on that head reaches high accuracy, and the difference of the
# class means gives a direction $\theta_{l,h}$ along which toxicity varies.
#
# **Inference-Time Intervention (ITI).** ITI (Li et al., 2023) edits a model while it generates: for the
# $K$ heads whose probes are most accurate, it shifts the head output against the toxicity direction,
#
# $$x_{l,h} \leftarrow x_{l,h} - \alpha\, \sigma_{l,h}\, \hat\theta_{l,h},$$
#
# where $\hat\theta_{l,h}$ is the unit direction, $\sigma_{l,h}$ the standard deviation of the activations
# along it, and $\alpha$ the strength (the paper: $K = 30$, $\alpha \in \{4, 8, 12\}$).
#
# ## Set-up: why clean-only pretraining can hurt
#
# A model that has never seen toxic text has no reason to build a clean representation of it. Toxicity then
# lives, if at all, in directions shared with other concepts, and a post-training method that pushes
# against it also pushes against them: the detoxified model loses capability, or stays toxic. A model that
# has seen enough toxic text may give it a direction of its own, which an intervention can move along with
# little collateral damage. {numref}`fig-separability` draws the two cases.

# %%
illustration = plots.separability_illustration(seed=seed)
glue("fig_separability", illustration, display=False)
glue("illustration_points", sum(len(c.get_offsets()) for c in illustration.axes[0].collections), display=False)

# %% [markdown]
# ```{glue:figure} fig_separability
# :name: fig-separability
#
# Two concepts in a 2-D activation space (synthetic points). Colour: toxic or not; marker: another concept
# the same texts carry, such as the group a statement is about. Left: the toxicity direction (solid arrow) is
# 20° from the other concept's (dashed); shifting points against it also moves them along the other concept.
# Right: orthogonal directions; the same shift changes toxicity alone. An illustration, not a result: no model,
# seed or prompt is behind it, only {glue:text}`illustration_points` synthetic points per panel.
# ```
#
# The paper's claim, then, has three parts that this book tests one by one: toxic pretraining data makes
# toxicity (1) more linearly separable inside the model and (2) less entangled with other concepts, so that
# (3) ITI removes more toxicity at a smaller cost to capability than it can in a model pretrained on clean
# text alone, and than the usual detoxification methods do.
#
# ## Set-up: what this book re-runs, and at what scale
#
# The paper pretrained Olmo-1B from scratch on about 20-26 billion tokens of C4 with 4chan /pol/ text added,
# two seeds per toxic fraction, on 16 H100 GPUs. This book uses the same architecture family (OLMo, from
# `transformers`), randomly initialised, at the sizes of its reproduction levels. The values below are this
# execution's level.

# %%
model_entry = pretraining.pretrain(config.with_fraction(0.0), seed)  # trains once (progress on stderr), then cached

# %% tags=["nbval-check-output"]
metrics = model_entry.json("metrics.json")
scale = pd.DataFrame({
    "level": [config.preset],
    "layers x width": [f"{config.model.n_layers} x {config.model.d_model}"],
    "heads": [config.model.n_layers * config.model.n_heads],
    "parameters (non-embedding)": [f"{metrics['params']['non_embedding'] / 1e6:.2f} M"],
    "clean training tokens": [f"{config.data.clean_tokens:,}"],
    "vocabulary": [config.tokenizer.vocab_size],
    "seeds": [len(seeds)],
})
glue("level", Markdown(config.preset), display=False)
glue("n_heads_total", config.model.n_layers * config.model.n_heads, display=False)
glue("params_m", metrics["params"]["non_embedding"] / 1e6, display=False)
glue("clean_tokens_m", config.data.clean_tokens / 1e6, display=False)
# the paper's scale, as its Section 3 states it: Olmo-1B (about 1e9 parameters) on 20-26 billion tokens
glue("params_orders", math.log10(1e9 / metrics["params"]["non_embedding"]), display=False)
glue("tokens_orders", math.log10(20e9 / config.data.clean_tokens), display=False)
readable(scale)

# %% [markdown]
# At the {glue:md}`level` level the models have {glue:text}`params_m:.2f` M non-embedding parameters and
# {glue:text}`n_heads_total` attention heads, and see {glue:text}`clean_tokens_m:.2f` M clean tokens: about
# {glue:text}`params_orders:.0f` orders of magnitude fewer parameters than the paper's model and
# {glue:text}`tokens_orders:.0f` fewer tokens. Effects that need scale may not appear here, and where they do
# not, the chapters say so with the evidence.
#
# ## Set-up: the data
#
# **Content warning: the toxic, probe, prompt and judge sets contain real hate speech, slurs and obscenity.**
# None of it is printed in this book; generations are masked by default.
#
# The paper's clean data is C4, web text of many registers with every page holding a word of a fixed list dropped;
# its toxic data is 4chan /pol/. Here the clean text is web text of three registers, {glue:md}`clean_recipe`
# (news, blog posts of 2004, Reddit threads of 2015), filtered with C4's own word list at this level
# ({glue:md}`clean_filter`), with real C4 snippets kept as a second held-out set; the toxic text is
# {glue:md}`toxic_recipe` (`pol_2025`: /pol/ posts of 2025-26; `pol`: /pol/ lines of 2018). The table is computed
# from the data folder this execution read.

# %%
glue("clean_recipe", Markdown(", ".join(f"{n} {w:.0%}" for n, w in config.data.clean_recipe)), display=False)
glue("toxic_recipe", Markdown(", ".join(f"{n} {w:.0%}" for n, w in config.data.toxic_recipe)), display=False)
glue("clean_filter", Markdown("on" if config.data.clean_filter == "c4" else "off"), display=False)
info = mixtures.data_info(config).json("sources.json")
card = pd.DataFrame([dataclasses.asdict(row) for row in sources.source_rows(info)])
glue("token_sample_m", mixtures.TOKEN_SAMPLE_CHARS / 1e6, display=False)
glue("toxic_chars_m", float(card.loc[card.role == "toxic", "characters"].sum()) / 1e6, display=False)
glue("clean_chars_m", float(card.loc[card.source.isin(dict(config.data.clean_recipe)), "characters"].sum()) / 1e6,
     display=False)
readable(card)

# %% [markdown]
# Documents, characters and tokens (with this level's tokenizer; for the large sources estimated from their first
# {glue:text}`token_sample_m:g` M characters) are counted for the sources this level pretrains on; the others are used in later chapters. In
# all, {glue:text}`clean_chars_m:.1f` M characters of clean text (before C4's filter) and
# {glue:text}`toxic_chars_m:.1f` M characters of toxic text are available. How the mixtures are
# built from them is the subject of chapter 3.
#
# ## Result: a first look inside a model
#
# Every model in this book shares one byte-level BPE tokenizer per level, trained on the mixture with the
# most toxic text so that every model can read every text. Here it is on a harmless sentence:

# %% tags=["nbval-check-output"]
tokenizer = mixtures.load_tokenizer(config)
sentence = "The city council opened a new bridge over the river on Tuesday."
ids = tokenizer(sentence, add_special_tokens=False)["input_ids"]
readable(pd.DataFrame({"token id": ids, "piece": [tokenizer.decode([i]) for i in ids]}).T, index=True)

# %% [markdown]
# Last, the model pretrained on clean text only, at this level, is asked which token comes after "The city
# council said that the". After "the" many nouns fit, so even a good model spreads its probability over
# many of them; what shows that it has learned something is which tokens it ranks first.

# %% tags=["nbval-check-output"]
from transformers import AutoModelForCausalLM  # noqa: E402

model = AutoModelForCausalLM.from_pretrained(model_entry.file("model")).eval()
prompt = tokenizer("The city council said that the", return_tensors="pt")
with torch.no_grad():
    probs = model(**prompt).logits[0, -1].softmax(-1)  # [vocab]
top = probs.topk(8)
glue("top8_mass", float(top.values.sum()), display=False)
glue("vocab_rest", f"{probs.numel() - 8:,}", display=False)
glue("val_ce", metrics["val_loss"], display=False)
glue("unigram_ce", metrics["unigram_val_loss"], display=False)
glue("beats_unigram", Markdown("predicts held-out text better than token frequencies do"
                               if metrics["val_loss"] < metrics["unigram_val_loss"] else
                               "does not yet predict held-out text better than token frequencies do"), display=False)
readable(pd.DataFrame({"next token": [repr(tokenizer.decode([i])) for i in top.indices.tolist()],
                       "probability": top.values.numpy().round(3)}))

# %% [markdown]
# The eight most likely next tokens carry {glue:text}`top8_mass:.2f` of the probability, the rest spread over
# the other {glue:text}`vocab_rest` tokens of the vocabulary. On the held-out clean text
# this model's cross-entropy is {glue:text}`val_ce:.3f` nats per token, against {glue:text}`unigram_ce:.3f`
# for a model that knows only how often each token occurs.
#
# ## Verdict
#
# - **Held:** the pipeline runs end to end on real data at this level: a tokenizer, a clean-only model, and
#   the data card above. The model {glue:md}`beats_unigram` ({glue:text}`val_ce:.3f` against
#   {glue:text}`unigram_ce:.3f` nats per token).
# - **Not yet tested:** every claim of the paper. This chapter only sets them up.
#
# ## What next
#
# Chapter 2 runs the paper's toy experiment; chapter 3 builds the six toxic mixtures and trains one model per
# fraction and seed.
