"""The data layer (paper Section 3): the sources and mixtures (`corpora`), the tokenizer, the hub loaders and
the packed copy of the data folder."""
