"""Masking toxic text before it is shown: in the book, in logs and in test output (DESIGN: Data, "never print
raw toxic text ... show generations masked by default").

The corpora behind the paper's Section 3 and the generations of Section 5 hold real slurs and hate speech.
Anything that displays text from them goes through `mask` (one string) or `mask_all` (many), which replace
each offensive word by its first letter and asterisks of the same length ("c***"), and leave benign words as
they are. Only the characters of a flagged word change, so whitespace, punctuation and the length of every
line are kept, and masking twice gives the same text as masking once.

A word is flagged when either test fires:
- the lexical judge `alt-profanity-check` (a linear SVM trained on Davidson et al. and Wikipedia toxic
  comments) scores the word on its own at `THRESHOLD` or above, as written or after undoing leetspeak
  ("sh1t"). Scored alone, words such as "kill", "hate" or "gay" pass the threshold too: the rule is
  deliberately strict, since a masked benign word costs a reader little and a shown slur cannot be unshown;
- a small list of slurs, most of which the judge misses when they stand alone, stored as salted SHA-256
  prefixes so that no slur is written in this repository. A word matches it whole, with a common suffix
  ("-s", "-ed", ...), after undoing leetspeak, accents, separators ("n.a.m.e") and stretched letters, or
  with one or two letters hidden by "*"; a few long, unambiguous roots also match inside a compound word.
  To add a word, run `python -m toxlab.core.safety --hash WORD` and paste the printed hash into `_EXACT`.

Measured once on the staged data: the rule masks about 0.4 % of the words of Wikinews text and about 5 % of
/pol/ lines; among Davidson et al.'s hate-speech tweets, the share the judge flags as whole texts falls from
0.93 to 0.04 after masking. Known benign casualties are words the judge learnt as insults when alone
("white", "kill", "gay", "Niger"): a reader can still follow them.

If the judge cannot be loaded (its pickled model needs a compatible scikit-learn), every word of four or
more letters is masked instead, with one warning: strict, never lenient.

Raw text is shown only on request: `mask(text, show=True)`, or `TOXLAB_SHOW_TOXIC=1` in the environment.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import string
import sys
import unicodedata
import warnings
from collections.abc import Iterable

#: A word is masked when the lexical judge scores it alone at or above this.
THRESHOLD = 0.5
SHOW_ENV = "TOXLAB_SHOW_TOXIC"
MASK_CHAR = "*"

_SALT = "toxlab-safety:"
_HASH_CHARS = 16
# Salted SHA-256 prefixes of normalised slurs (see `_normalise`), matched as whole words or with a suffix.
_EXACT = frozenset("""
    00b3463f47fb6e76 067646a5b2423b68 09eb377543509d97 0d10b293585e339b 0d6e2acbd93425af
    0e21b857f8371288 0e9c907b812489bf 0fb79b7d38228d85 0fc7d23518ed52a6 14244ff93fac60e0
    18dceec451321ed0 191703d91ecd8628 19c521f8c468a6a5 1aa2fd874829e7e7 1e8f7a78d25bf9ed
    1eed7403120a8275 21ae853da2558fba 26281074c97d77b7 282b2c67ceb9194c 2f131e1c806150a1
    2f25a2e76400f840 30609d6294793b1c 30b87187e935de87 31bb74a88782b940 3be891716fb831ae
    406ef2574232e722 409b06b612e9e8a5 481c59605e8e7f46 4a5c8f59019526d2 4beaf58f261defc1
    4cdf37d4cd3c5ed3 4da8d0a7a432439d 4ec8a9f743f0c338 506d1398931138f6 52f6ee51182ac3f9
    53256004b0c9c9a1 539ad890f52749b6 543fa15bc2bad599 54665a6622e5d408 54930c5952f746a6
    549e676750447f42 56981364dbdeca55 5f4e3867b01c2b1c 6063847417df5715 663af8900e8251a8
    6814b73930529646 698ef427378152b0 6acc7e920e36782e 6c2577efb3a2eb25 6d015ef67925bcd9
    7056d312c404e503 712e158c4f353559 71c165c1f1b9d183 73b1f073d4f589c1 73bf44faef072260
    74a50d180128f504 77806bf22fed1b75 7bb6e1379cac90c8 7ca40f8455f9a7d6 7d42d9fd65a72082
    82a8854e7a709dd8 84274980ad534450 85a6872b0af89c7a 87d13d9eb70f1d55 8962d9aee832ec80
    8c3d6207a4819936 8c44988eabae971b 8d88b04080b047ce 8e898298ae8f4db4 8f9fcc4a15012ad7
    918fcb678660a6d8 9671f6cfc13cb679 9a38e6b3e1a28f75 9c925d93b654434b 9e90e1f2c80bde90
    a81218ce7de50509 a88a3191b98db0ec a8ba963eb573b11f aa1874e4b177836f b2511abd4ea0d73c
    b602ad19f6a30966 b670291813d66b42 b69cd08597ea6569 b836d3cce2bd3ce5 c1e9713da7427902
    c268bea5540f4846 c367adb1bf105d86 c5eaed4f884c2a51 c6081437e80d4c15 c6ad02057d272991
    c6b06bc9287967fd c7f925928295e104 c9a8bf5c85dc5385 ccc02cb2e26b277b ccd8b73cc6c7eeff
    ccf4237e96910e6a ccfaab808a198739 cde960659dd6caa0 d0339286ec8f8ea2 d15783ce22fbe238
    d2a3b3c22aa028bb d8bf77f34bf394d8 dd245ca82cb9f252 ddb034e43a1220f6 df49fb6d144a08b9
    e3102f20bccf6242 e39a1ab54e89a046 f03fe69eb17c90bf f266f1dcffffb19e f32ecd9911b93b3f
    f3c427a96fcf35a9 f7c61b3e11deac14 f9e7d30af4427778 fb6c68cfde8171aa fc4a60bf6d74a20a
    fd0c62de427ccb34 ffbea64d74804292
""".split())
# Long, unambiguous roots, matched anywhere inside a word (compounds, hashtags); and their lengths.
_WITHIN = frozenset("""
    0fb79b7d38228d85 409b06b612e9e8a5 481c59605e8e7f46 4a5c8f59019526d2 53256004b0c9c9a1
    698ef427378152b0 6acc7e920e36782e 7ca40f8455f9a7d6 7d42d9fd65a72082 918fcb678660a6d8
    96cfad87b9f9d20a a81218ce7de50509 c268bea5540f4846 c367adb1bf105d86 c7f925928295e104
    f32ecd9911b93b3f f7c61b3e11deac14 ffbea64d74804292
""".split())
_WITHIN_LENGTHS = (4, 5, 6, 7, 8, 9, 12)
_SUFFIXES = ("s", "es", "z", "ed", "ing", "ish")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
                       "@": "a", "$": "s", "!": "i", "|": "l", "+": "t"})
# The masked span of a whitespace-separated token: from its first letter or digit to its last letter,
# digit or "*" (surrounding quotes, brackets and punctuation stay as they are).
_CORE = re.compile(r"[^\W_](?:.*[\w*])?", re.S)
_PIECES = re.compile(r"[^\W_][\w*$@!|+]*")  # parts of a compound: "word-word", "word/word", "#tag"
_SCORES: dict[str, float] = {}
_judge_failed = False


def _digest(word: str) -> str:
    return hashlib.sha256((_SALT + word).encode()).hexdigest()[:_HASH_CHARS]


def _normalise(word: str) -> str:
    """Lowercase letters only: accents stripped, leetspeak undone, separators dropped; "*" is kept (a hidden
    letter)."""
    word = unicodedata.normalize("NFKD", word.lower())
    word = "".join(c for c in word if not unicodedata.combining(c)).translate(_LEET)
    return re.sub(r"[^a-z*]", "", word)


def _unstretched(word: str) -> list[str]:
    """`word` with each run of 3+ equal letters ("niiiice") cut to one or to two letters."""
    runs = list(re.finditer(r"(.)\1{2,}", word))[:4]
    if not runs:
        return [word]
    forms = []
    for widths in itertools.product((1, 2), repeat=len(runs)):
        out, last = [], 0
        for run, width in zip(runs, widths):
            out += [word[last:run.start()], run.group(1) * width]
            last = run.end()
        forms.append("".join(out) + word[last:])
    return forms


def _listed(word: str) -> bool:
    """`word` (normalised, no "*") is a listed slur: whole, with a suffix, or containing a listed root."""
    if len(word) < 2:
        return False
    if _digest(word) in _EXACT:
        return True
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 2 and _digest(word[: -len(suffix)]) in _EXACT:
            return True
    return any(_digest(word[i:i + n]) in _WITHIN for n in _WITHIN_LENGTHS for i in range(len(word) - n + 1))


def _already_masked(word: str) -> bool:
    return len(word) > 1 and set(word[1:]) == {MASK_CHAR}


def _listed_with_wildcards(word: str) -> bool:
    """Like `_listed`, but each "*" (at most two) may stand for any letter: "n*me" is checked as n?me."""
    holes = word.count(MASK_CHAR)
    if holes == 0:
        return any(_listed(form) for form in _unstretched(word))
    if holes > 2 or _already_masked(word):
        return False
    parts = word.split(MASK_CHAR)
    for letters in itertools.product(string.ascii_lowercase, repeat=holes):
        candidate = parts[0] + "".join(c + p for c, p in zip(letters, parts[1:]))
        if _listed(candidate):
            return True
    return False


def _judge_scores(words: set[str]) -> None:
    """Fill `_SCORES` for `words` with the lexical judge, in one batch."""
    global _judge_failed
    todo = sorted(w for w in words if w not in _SCORES)
    if not todo or _judge_failed:
        return
    try:
        from profanity_check import predict_prob
        scores = predict_prob(todo)
    except Exception as err:  # an unpickling or version error: fall back to the strict rule
        _judge_failed = True
        warnings.warn(f"toxlab.core.safety: the lexical judge could not be loaded ({type(err).__name__}); "
                      f"masking every word of 4+ letters instead", stacklevel=3)
        return
    if len(_SCORES) > 200_000:  # a bound for long-running processes
        _SCORES.clear()
    _SCORES.update(zip(todo, map(float, scores)))


def _candidates(piece: str) -> tuple[str, ...]:
    """The strings the judge scores for one piece: as written (lowercase) and with leetspeak undone."""
    lower = piece.lower()
    plain = _normalise(piece).replace(MASK_CHAR, "")
    return (lower, plain) if plain and plain != lower else (lower,)


def _flagged(piece: str) -> bool:
    if not any(c.isalpha() for c in piece):  # numbers are never masked
        return False
    if _listed_with_wildcards(_normalise(piece)):
        return True
    if _judge_failed:
        return sum(c.isalpha() for c in piece) >= 4
    return any(_SCORES.get(c, 0.0) >= THRESHOLD for c in _candidates(piece))


def _hide(text: str) -> str:
    """Keep the first character; every other non-space character becomes `MASK_CHAR`."""
    return text[:1] + "".join(c if c.isspace() else MASK_CHAR for c in text[1:])


def _mask_token(token: str) -> str:
    core = _CORE.search(token)
    if core is None:
        return token
    start, end = core.span()
    word = token[start:end]
    pieces = list(_PIECES.finditer(word))
    out = list(word)
    hit = False
    for piece in pieces:
        if _flagged(piece.group()):
            hit = True
            out[piece.start():piece.end()] = _hide(piece.group())
    if not hit and len(pieces) > 1 and _listed_with_wildcards(_normalise(word)):
        out = list(_hide(word))  # a slur spelled across separators: "n.a.m.e", "n-a-m-e"
    return token[:start] + "".join(out) + token[end:]


def _tokens(text: str) -> list[str]:
    return re.split(r"(\s+)", text)


def _pieces_of(texts: Iterable[str]) -> set[str]:
    words = set()
    for text in texts:
        for token in text.split():
            core = _CORE.search(token)
            if core:
                for piece in _PIECES.findall(core.group()):
                    words.update(_candidates(piece))
    return words


def showing(show: bool | None = None) -> bool:
    """Whether raw text is shown: `show` if given, else `TOXLAB_SHOW_TOXIC` is set to 1 / true / yes."""
    if show is not None:
        return bool(show)
    return os.environ.get(SHOW_ENV, "").strip().lower() in ("1", "true", "yes")


def mask_all(texts: Iterable[str], show: bool | None = None) -> list[str]:
    """`mask` of each text (the judge scores all their words in one batch)."""
    texts = [str(t) for t in texts]
    if showing(show):
        return texts
    _judge_scores(_pieces_of(texts))
    out = []
    for text in texts:
        # Masking only ever adds asterisks, so repeating it until nothing changes ends, and makes `mask`
        # idempotent by construction (a masked word is never read back as a new one).
        while True:
            masked = "".join(part if part.isspace() or not part else _mask_token(part) for part in _tokens(text))
            if masked == text:
                break
            _judge_scores(_pieces_of([masked]))
            text = masked
        out.append(text)
    return out


def mask(text: str, show: bool | None = None) -> str:
    """`text` with every offensive word masked ("t*****"), the same length and whitespace; raw only if
    `show=True` or `TOXLAB_SHOW_TOXIC=1`."""
    return mask_all([text], show)[0]


def word_hash(word: str) -> str:
    """The blocklist entry for `word` (as `_EXACT` stores it)."""
    return _digest(_unstretched(_normalise(word))[-1])


def main(argv: list[str] | None = None) -> int:
    """`python -m toxlab.core.safety --hash WORD`: print the blocklist entry for WORD."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "--hash":
        print("usage: python -m toxlab.core.safety --hash WORD", file=sys.stderr)
        return 2
    print(word_hash(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
