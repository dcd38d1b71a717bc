"""Online judges for users with internet and keys: ToxiGen RoBERTa and Detoxify's toxic-bert through
transformers' pipeline, and Perspective API (the paper's judge) over HTTP. Never called in tests."""

from __future__ import annotations

import json
import os
import time
import typing
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request
from urllib.request import urlopen as default_urlopen

import numpy as np

from toxlab.core.errors import ConfigError, JudgeUnavailableError, ToxlabError
from toxlab.judges.encoder import default_device


class PipelineJudge:
    """A Hugging Face text-classification model through a transformers pipeline. Its weights download from
    the Hub the first time, so it needs internet once; it is never run in tests or CI.

    toxic_label: the output label whose probability is the toxicity; function: 'softmax' (one label per
    text) or 'sigmoid' (multi-label heads such as Detoxify's).
    """

    def __init__(self, name: str, model_id: str, toxic_label: str, function: str, batch_size: int = 32,
                 device: str | None = None, pipeline_factory: typing.Callable | None = None):
        self.name, self.model_id, self.toxic_label, self.function = name, model_id, toxic_label, function
        self.batch_size, self.device = batch_size, device
        self._factory = pipeline_factory or _hf_pipeline
        self._pipe = None

    def _pipeline(self):
        if self._pipe is None:
            try:
                self._pipe = self._factory(self.model_id, self.device)
            except (OSError, ValueError) as err:
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise JudgeUnavailableError(f"{self.model_id} could not be loaded ({first}); it downloads from the "
                                            f"Hugging Face Hub once, so run it with internet first") from None
        return self._pipe

    def score(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        outputs = self._pipeline()(list(texts), batch_size=self.batch_size, truncation=True, top_k=None,
                                   function_to_apply=self.function)
        if len(outputs) != len(texts):
            raise ToxlabError(f"{self.model_id} returned {len(outputs)} results for {len(texts)} texts; "
                              f"update transformers")
        scores = np.zeros(len(texts))
        for i, out in enumerate(outputs):
            labels = {d["label"]: float(d["score"]) for d in ([out] if isinstance(out, dict) else out)}
            if self.toxic_label not in labels:
                raise ToxlabError(f"{self.model_id} returned labels {sorted(labels)}, not {self.toxic_label!r}; "
                                  f"check the model id")
            scores[i] = labels[self.toxic_label]
        return np.clip(scores, 0.0, 1.0)


def _hf_pipeline(model_id: str, device: str | None):
    from transformers import pipeline
    return pipeline("text-classification", model=model_id, device=device or default_device())


def toxigen_roberta_judge(**kwargs) -> PipelineJudge:
    """ToxiGen's RoBERTa classifier (Hartvigsen et al. 2022): LABEL_1 = toxic."""
    return PipelineJudge("toxigen-roberta", "tomh/toxigen_roberta", "LABEL_1", "softmax", **kwargs)


def detoxify_judge(**kwargs) -> PipelineJudge:
    """Detoxify's original model (unitary/toxic-bert, Jigsaw toxic comments): the `toxic` head's sigmoid."""
    return PipelineJudge("detoxify", "unitary/toxic-bert", "toxic", "sigmoid", **kwargs)


class PerspectiveJudge:
    """Perspective API's TOXICITY (the paper's judge): one HTTP POST per text, at most `qps` requests a
    second (the default quota is 1), retrying on HTTP 429. Needs internet and PERSPECTIVE_API_KEY; never
    run in tests or CI. Empty texts score 0 without a request (the API rejects them)."""

    name = "perspective"
    URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"

    def __init__(self, api_key: str | None = None, qps: float = 1.0, retries: int = 3, timeout_s: float = 30.0,
                 urlopen: typing.Callable | None = None, sleep: typing.Callable[[float], None] = time.sleep,
                 clock: typing.Callable[[], float] = time.monotonic):
        self._key = api_key or os.environ.get("PERSPECTIVE_API_KEY", "")
        if not self._key:
            raise JudgeUnavailableError("set PERSPECTIVE_API_KEY to a Perspective API key "
                                        "(https://perspectiveapi.com) to use the perspective judge")
        if not qps > 0:
            raise ConfigError(f"qps={qps} must be positive")
        self.qps, self.retries, self.timeout_s = qps, retries, timeout_s
        self._urlopen, self._sleep, self._clock = urlopen, sleep, clock
        self._last = None

    def request(self, text: str):
        """The POST request for one text (its URL carries the key: never log it)."""
        body = {"comment": {"text": text}, "languages": ["en"], "requestedAttributes": {"TOXICITY": {}},
                "doNotStore": True}
        return Request(f"{self.URL}?{urlencode({'key': self._key})}", data=json.dumps(body).encode("utf-8"),
                       headers={"Content-Type": "application/json"}, method="POST")

    def _pace(self) -> None:
        if self._last is not None:
            wait = 1.0 / self.qps - (self._clock() - self._last)
            if wait > 0:
                self._sleep(wait)
        self._last = self._clock()

    def _score_one(self, text: str) -> float:
        opener = self._urlopen or default_urlopen
        for attempt in range(self.retries + 1):
            self._pace()
            try:
                with opener(self.request(text), timeout=self.timeout_s) as response:
                    payload = json.loads(response.read().decode("utf-8"))
            except HTTPError as err:
                if err.code == 429 and attempt < self.retries:
                    self._sleep(2.0 ** attempt)
                    continue
                raise JudgeUnavailableError(f"Perspective API answered HTTP {err.code}; check PERSPECTIVE_API_KEY, "
                                            f"its quota and the API's status") from None
            except URLError as err:
                raise JudgeUnavailableError(f"Perspective API cannot be reached ({err.reason}); it needs "
                                            f"internet") from None
            except ValueError:
                raise ToxlabError("Perspective API answered with something that is not JSON; try again") from None
            try:
                value = float(payload["attributeScores"]["TOXICITY"]["summaryScore"]["value"])
            except (KeyError, TypeError, ValueError):
                raise ToxlabError("Perspective API's answer has no TOXICITY summary score; check the request "
                                  "format against the API's documentation") from None
            return min(max(value, 0.0), 1.0)
        raise AssertionError("unreachable")

    def score(self, texts: list[str]) -> np.ndarray:
        return np.asarray([self._score_one(t) if t.strip() else 0.0 for t in texts], dtype=np.float64)
