"""Toxicity judges (the paper's Perspective API, offline): one module per kind, and the judge card."""
