"""The lexical judges (alt-profanity-check, hatesonar): baselines beside toxlab's MiniLM judge."""

from __future__ import annotations

import numpy as np

from toxlab.core.errors import JudgeUnavailableError


class ProfanityCheckJudge:
    """alt-profanity-check's calibrated SVM (trained on Davidson et al. tweets and Wikipedia comments)."""

    name = "alt-profanity-check"

    def __init__(self):
        try:
            import profanity_check  # noqa: F401  (loads its scikit-learn model on import)
        except Exception as err:  # not installed, or its pickled model does not load under this scikit-learn
            raise JudgeUnavailableError(f"alt-profanity-check cannot start ({type(err).__name__}); install it "
                                        f"with `pip install alt-profanity-check` (a toxlab dependency)") from None

    def score(self, texts: list[str]) -> np.ndarray:
        from profanity_check import predict_prob
        if not texts:
            return np.zeros(0)
        return np.asarray(predict_prob(list(texts)), dtype=np.float64)


HATESONAR_FIX = ("install it with `pip install 'toxlab[judges]'` (hatesonar and onnxruntime) and make the "
                 "en_US.UTF-8 locale (Debian: apt-get install locales; enable en_US.UTF-8 in /etc/locale.gen; "
                 "locale-gen)")


class HateSonarJudge:
    """hatesonar's TF-IDF + logistic regression (ONNX), trained on Davidson et al. tweets: the probability
    of hate speech or offensive language, i.e. 1 - P(neither)."""

    name = "hatesonar"

    def __init__(self):
        try:
            from hatesonar import Sonar
        except ImportError:
            raise JudgeUnavailableError(f"hatesonar is not installed; {HATESONAR_FIX}") from None
        try:
            self._sonar = Sonar()
        except Exception as err:  # onnxruntime's string normaliser fails without the en_US.UTF-8 locale
            why = "the en_US.UTF-8 locale is missing" if "locale" in str(err).lower() else type(err).__name__
            raise JudgeUnavailableError(f"hatesonar cannot start ({why}); {HATESONAR_FIX}") from None

    def score(self, texts: list[str]) -> np.ndarray:
        out = np.zeros(len(texts))
        for i, text in enumerate(texts):
            classes = {c["class_name"]: float(c["confidence"]) for c in self._sonar.ping(text)["classes"]}
            out[i] = 1.0 - classes["neither"]
        return np.clip(out, 0.0, 1.0)
