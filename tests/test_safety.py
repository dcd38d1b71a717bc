"""Masking toxic text for display: offensive words are hidden, benign ones stay readable, whitespace and
length are kept, masking twice changes nothing, and raw text needs an explicit opt-in.

No offensive word is written here in plain text: mild profanity is built from parts, and the slur list is
exercised with a harmless stand-in word planted in it."""

import re

import pytest

from toxlab.core import safety

# Mild profanity, assembled so that the source holds none of it.
SWEAR = "sh" + "it"
CURSE = "f" + "uck"
CRUD = "cr" + "ap"

BENIGN = [
    "The council opened a new bridge on day 3.",
    "Scientists measured the harvest report, and volunteers restored the old library.",
    "A small bakery celebrated the annual festival in the river town.",
    "you absolute turnip, what a soggy biscuit",  # the fixture data's placeholder insults
    "2024: 3.14 -- 42%",
]
MIXED = [
    f"well {SWEAR}, that was bad",
    f"what the {CURSE} is this {CRUD}?!",
    f"  leading\tand {SWEAR.upper()}  trailing \n whitespace ",
    f'"{CRUD}!" said the mayor',
    f"sh{'1'}t and f{'*'}ck and {CRUD}-tastic",
    "",
    "   ",
]


@pytest.fixture(autouse=True)
def _no_opt_in(monkeypatch):
    monkeypatch.delenv(safety.SHOW_ENV, raising=False)


def _words(text):
    return text.split()


@pytest.mark.parametrize("text", BENIGN)
def test_benign_text_is_unchanged(text):
    assert safety.mask(text) == text


@pytest.mark.parametrize("word", [SWEAR, CURSE, CRUD, SWEAR.capitalize(), "sh1t", "f*ck"])
def test_profanity_is_masked_to_its_first_letter(word):
    masked = safety.mask(f"this {word} here")
    hidden = _words(masked)[1]
    assert hidden == word[0] + "*" * (len(word) - 1)
    assert _words(masked)[0] == "this" and _words(masked)[2] == "here"


@pytest.mark.parametrize("text", BENIGN + MIXED)
def test_whitespace_and_length_are_kept(text):
    masked = safety.mask(text)
    assert len(masked) == len(text)
    assert [i for i, c in enumerate(masked) if c.isspace()] == [i for i, c in enumerate(text) if c.isspace()]
    # only characters of words change, and only into the mask character
    assert all(a == b or b == "*" for a, b in zip(text, masked))


@pytest.mark.parametrize("text", BENIGN + MIXED)
def test_masking_is_idempotent(text):
    once = safety.mask(text)
    assert safety.mask(once) == once


def test_punctuation_around_a_masked_word_is_kept():
    assert safety.mask(f'"{CRUD}!" said the mayor') == f'"{CRUD[0]}***!" said the mayor'
    assert safety.mask(f"{CRUD}-tastic").startswith(f"{CRUD[0]}***-")


def test_mask_all_matches_mask():
    texts = BENIGN + MIXED
    assert safety.mask_all(texts) == [safety.mask(t) for t in texts]


def test_opt_in_shows_raw_text(monkeypatch):
    text = f"what the {CURSE}"
    assert safety.mask(text, show=True) == text
    assert safety.mask_all([text], show=True) == [text]
    monkeypatch.setenv(safety.SHOW_ENV, "1")
    assert safety.mask(text) == text
    assert safety.mask(text, show=False) != text  # an explicit False wins over the environment
    monkeypatch.setenv(safety.SHOW_ENV, "0")
    assert safety.mask(text) != text


@pytest.fixture
def planted(monkeypatch):
    """'turnip' planted in the exact list and 'biscuit' in the in-word list, standing in for slurs."""
    monkeypatch.setattr(safety, "_EXACT", safety._EXACT | {safety.word_hash("turnip")})
    monkeypatch.setattr(safety, "_WITHIN", safety._WITHIN | {safety.word_hash("biscuit")})
    monkeypatch.setattr(safety, "_WITHIN_LENGTHS", tuple(sorted({*safety._WITHIN_LENGTHS, 7})))


@pytest.mark.parametrize("spelling", ["turnip", "Turnip", "TURNIPS", "turnipish", "turn1p", "7urnip", "t*rnip",
                                      "t**nip", "t.u.r.n.i.p", "t-u-r-n-i-p", "turniiiiip", "#turnip",
                                      "(turnip)", "túrnip"])
def test_a_listed_word_is_masked_however_it_is_spelled(planted, spelling):
    masked = safety.mask(f"you {spelling} there")
    assert _words(masked)[1] != spelling
    assert not re.search(r"[a-z0-9]{2}", _words(masked)[1].lower().lstrip("#(")), masked


@pytest.mark.parametrize("compound", ["soggybiscuit", "biscuitlover", "#biscuits4ever"])
def test_a_listed_root_is_masked_inside_compounds(planted, compound):
    assert safety.mask(compound) != compound


@pytest.mark.parametrize("word", ["turnstile", "turn", "tulip", "biscotti"])
def test_near_misses_of_a_listed_word_stay(planted, word):
    assert safety.mask(f"the {word} here") == f"the {word} here"


def test_the_shipped_list_holds_only_hashes():
    assert len(safety._EXACT) > 100 and len(safety._WITHIN) > 10
    for entry in safety._EXACT | safety._WITHIN:
        assert re.fullmatch(r"[0-9a-f]{16}", entry), entry
    assert safety.word_hash("turnip") not in safety._EXACT  # benign words are not listed


def test_without_the_judge_masking_is_strict(monkeypatch):
    monkeypatch.setattr(safety, "_judge_failed", True)
    assert safety.mask("The council opened a new bridge") == "The c****** o***** a new b*****"


def test_hash_command_prints_a_list_entry(capsys):
    assert safety.main(["--hash", "Turnip"]) == 0
    assert capsys.readouterr().out.strip() == safety.word_hash("turnip")
    assert safety.main(["turnip"]) == 2
