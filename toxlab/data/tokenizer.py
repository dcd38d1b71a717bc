"""The shared byte-level BPE tokenizer (one per preset, so every mixture's model is comparable)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from toxlab.core.config import TokenizerConfig

EOS = "<|endoftext|>"
PAD = "<|pad|>"


def train_tokenizer(texts: Iterable[str], config: TokenizerConfig) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE of `config.vocab_size` tokens (EOS and PAD included) on `texts`."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=config.vocab_size, special_tokens=[EOS, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    bpe.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   unk_token=None, clean_up_tokenization_spaces=False)


def load_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    return PreTrainedTokenizerFast.from_pretrained(str(path))


def token_bytes(tokenizer) -> np.ndarray:
    """[vocab] bytes of text each token id stands for. In a byte-level BPE every character of a token's string
    stands for one byte; special tokens (EOS, PAD) stand for none."""
    lengths = np.zeros(len(tokenizer), dtype=np.int64)
    special = set(tokenizer.all_special_ids)
    for token, index in tokenizer.get_vocab().items():
        if index not in special:
            lengths[index] = len(token)
    return lengths


def bits_per_byte(ce: float, blocks: np.ndarray, byte_lengths: np.ndarray) -> float:
    """A cross-entropy `ce` (nats per predicted token, as `toxlab.model.train.evaluate` averages it over every
    position of `blocks` [n, seq_len] but each block's first) as bits per byte of the predicted text: models with
    different tokenizers compare on it."""
    predicted = blocks[:, 1:].astype(np.int64)
    n_bytes = int(byte_lengths[predicted].sum())
    if n_bytes == 0:
        raise ValueError("the blocks hold no text (only special tokens); bits per byte is undefined")
    return ce * predicted.size / n_bytes / math.log(2)
