"""Generation, the toxicity benchmarks and the capability cost of an intervention (paper Section 5)."""
