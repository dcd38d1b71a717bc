"""The shared byte-level BPE: exact round trip on any text, the configured vocabulary, special tokens."""

import pytest

from toxlab.core.config import TokenizerConfig
from toxlab.data.tokenizer import EOS, PAD, load_tokenizer, train_tokenizer

CORPUS = ["The council opened a new bridge on day 3.", "Volunteers restored the old library.",
          "lol no, you absolute turnip"] * 50


@pytest.fixture(scope="module")
def tok():
    return train_tokenizer(CORPUS, TokenizerConfig(vocab_size=512, train_chars=10_000))


@pytest.mark.parametrize("text", ["The council opened a new bridge.", "  leading spaces\nand\ttabs ",
                                  "unicode: café, naïve, 東京, emoji 🙂", ""])
def test_round_trip(tok, text):
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text


def test_vocabulary_and_special_tokens(tok):
    assert len(tok) <= 512
    assert tok.eos_token == EOS and tok.pad_token == PAD and tok.eos_token_id != tok.pad_token_id


def test_learns_merges(tok):
    text = "The council opened a new bridge"
    assert len(tok(text, add_special_tokens=False)["input_ids"]) < len(text.encode()) / 2


def test_save_and_load(tok, tmp_path):
    tok.save_pretrained(str(tmp_path))
    again = load_tokenizer(tmp_path)
    assert again("Volunteers restored")["input_ids"] == tok("Volunteers restored")["input_ids"]
