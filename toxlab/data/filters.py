"""C4's document filter: a page holding any word or phrase of the List of Dirty, Naughty, Obscene or Otherwise Bad
Words (`filters/ldnoobw_en.txt`, the list C4 used) is dropped whole (Raffel et al. 2020, Section 2.2).

The pretraining mixtures apply it to the clean web text (`DataConfig.clean_filter = "c4"`), as C4 did; the judge's
data and card use the same matching to tell lexical toxicity (a listed word survives word shuffling) from toxicity
carried by meaning. The list holds offensive words: nothing here prints it.
"""

from __future__ import annotations

import re

WORD = re.compile(r"[a-z']+")


def listed_words(entries: list[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    """C4's bad-word list split into single words and multi-word phrases, lower-cased."""
    entries = [" ".join(e.lower().split()) for e in entries if e.strip()]
    return frozenset(e for e in entries if " " not in e), tuple(e for e in entries if " " in e)


def holds_listed(text: str, words: frozenset[str], phrases: tuple[str, ...]) -> bool:
    """Whether `text` holds a listed word (as a whole word) or phrase, case folded: C4's page filter."""
    lower = " ".join(WORD.findall(text.lower()))
    return any(w in words for w in lower.split()) or any(f" {p} " in f" {lower} " for p in phrases)
