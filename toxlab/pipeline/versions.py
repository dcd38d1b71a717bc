"""The one table of stage versions (DESIGN: caching).

A stage's cache key (`toxlab.core.artifacts.stage_key`) holds its name, this version, its config, the content hash
of the data it reads and the keys of the stages it builds on; not its code. Bump a stage's version whenever a
change can alter what it computes: tests/test_stage_code.py fails when any code a stage runs changed while its
version did not, and `toxlab stages verify --record` records the code after the bump (`toxlab.core.stage_code`).
"""

from __future__ import annotations

TOKENIZER_VERSION = 1
MIXTURE_VERSION = 2
PRETRAIN_VERSION = 1
SWEEP_VERSION = 1
DATA_INFO_VERSION = 2
MIXTURE_TOXICITY_VERSION = 1
ACTIVATIONS_VERSION = 1
PROBE_VERSION = 4  # 2: Newton's stopping rule; 3: cross-validated direction AUC, heads ranked by it;
#                   4: the summary records its cross-validation folds
TOY_VERSION = 1
JUDGE_VERSION = 4  # 2: benign registers, shuffled copies; 3: toxic copies labelled by C4's list; 4: top 2 layers tuned
JUDGE_CARD_VERSION = 3  # 2: false positives per register, web, salad per vocabulary, targets; 3: no-profanity salad
EVALUATE_VERSION = 3  # 2: heads by cv AUC, ITI's reference positions, word-shuffled floor, prompt-following;
#   3: capability on the WebText excerpts too
CALIBRATION_VERSION = 2  # 2: power-law steps instead of plain bisection (the alphas move within tolerance)
DOCUMENT_SCORES_VERSION = 1
SFT_VERSION = 1
DPO_VERSION = 1
BASELINE_VERSION = 3  # 2: ITI's reference positions and heads, the floor and prompt-following in results; 3: WebText
# Any causal LM given with --model (toxlab.pipeline.external), keyed by the content of its files
MODEL_ACTIVATIONS_VERSION = 1
MODEL_PROBE_VERSION = 2  # 2: the summary records its cross-validation folds
MODEL_CALIBRATION_VERSION = 1
MODEL_EVALUATE_VERSION = 2  # 2: capability on the WebText excerpts too
