"""Interpretability (paper Sections 2, 4 and 5): activation sites and hooks, probes, separability, ITI, LEACE
erasure and the toy experiment. Fitters return small frozen objects; nothing here caches."""
