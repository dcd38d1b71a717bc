"""The model layer (paper Section 3): the OLMo decoder (`decoder`) and the pretraining loop (`train`)."""
