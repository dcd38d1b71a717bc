"""What every toxicity judge is: texts -> probability of toxicity in [0, 1] (the paper's Perspective API, offline)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Judge(Protocol):
    name: str

    def score(self, texts: list[str]) -> np.ndarray:
        """[N] toxicity probabilities in [0, 1]."""
        ...
