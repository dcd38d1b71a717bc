"""Toxicity judges: texts -> probability of toxicity in [0, 1].

The paper scored with Perspective API, which cannot be reached offline. Until toxlab trains its own
validated offline judge, the default is the lexical judge `alt-profanity-check` (a linear SVM on word and
character n-grams, weights shipped in its wheel). It is weak on implicit hate (ROC-AUC 0.655 on the ToxiGen
human annotations, per shared/data/SOURCES.md), so the rates it gives are profanity rates, not hate rates.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Judge(Protocol):
    name: str

    def score(self, texts: list[str]) -> np.ndarray:
        """[N] toxicity probabilities in [0, 1]."""
        ...


class ProfanityCheckJudge:
    """alt-profanity-check's calibrated SVM (trained on Davidson et al. tweets and Wikipedia comments)."""

    name = "alt-profanity-check"

    def score(self, texts: list[str]) -> np.ndarray:
        from profanity_check import predict_prob
        if not texts:
            return np.zeros(0)
        return np.asarray(predict_prob(list(texts)), dtype=np.float64)


def default_judge() -> Judge:
    return ProfanityCheckJudge()
