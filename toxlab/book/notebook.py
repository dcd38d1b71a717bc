"""What every chapter calls: `setup` first (the book's plot style, and the data folder on Colab and Binder), and
`record` for each value the README is generated from (`toxlab readme` reads them back, computing nothing)."""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from pathlib import Path

from toxlab.core.config import RunConfig, get_preset
from toxlab.data import corpora, hub

ONLINE_DATA = Path("/content/toxlab-data") if Path("/content").is_dir() else Path.home() / "toxlab-data"


def setup(level: str, overrides: dict | None = None) -> RunConfig:
    """Apply the plot style, make sure the data is reachable, and return the level's validated config."""
    from transformers.utils import logging as hf_logging

    from toxlab.book import plots
    plots.style()
    hf_logging.disable_progress_bar()  # weight-loading bars are noise in a chapter
    online_notebook = "google.colab" in sys.modules or "BINDER_SERVICE_HOST" in os.environ
    if online_notebook and not os.environ.get("TOXLAB_DATA"):
        # Colab and Binder have no copy of the data: fetch the paper's public sources into the same layout.
        if not (ONLINE_DATA / "clean").exists():
            hub.download_all(ONLINE_DATA)
        os.environ["TOXLAB_DATA"] = str(ONLINE_DATA)
    corpora.data_root()  # fail here, with the message that says what to do, rather than mid-chapter
    return get_preset(level, overrides or {})


#: A record in the executed notebook: a display output holding JSON under RECORD_MIME, tagged as myst-nb tags
#: a hidden glue (`scrapbook` metadata with a mime prefix), so that the rendered page leaves it out.
RECORD_PREFIX = "application/vnd.toxlab.record+"
RECORD_MIME = RECORD_PREFIX + "json"


def jsonable(value):
    """`value` as plain JSON: dataclasses as dicts, tuples as lists, numpy scalars and arrays as numbers and
    lists, non-finite floats as None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays, torch tensors
        return jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot record a {type(value).__name__}; record numbers, text, lists, dicts or dataclasses")


def record(name: str, value) -> None:
    """Save `value` with the executed chapter under `name`, unseen on the page, for `toxlab readme`."""
    from IPython.display import display
    display({RECORD_MIME: jsonable(value)}, raw=True,
            metadata={"scrapbook": {"name": name, "mime_prefix": RECORD_PREFIX}})
