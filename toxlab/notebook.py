"""What every chapter calls first: the book's plot style, and the data folder on Colab and Binder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from toxlab.config import RunConfig, get_preset

ONLINE_DATA = Path("/content/toxlab-data") if Path("/content").is_dir() else Path.home() / "toxlab-data"


def setup(level: str, overrides: dict | None = None) -> RunConfig:
    """Apply the plot style, make sure the data is reachable, and return the level's validated config."""
    from transformers.utils import logging as hf_logging

    from toxlab import data, plots
    plots.style()
    hf_logging.disable_progress_bar()  # weight-loading bars are noise in a chapter
    online_notebook = "google.colab" in sys.modules or "BINDER_SERVICE_HOST" in os.environ
    if online_notebook and not os.environ.get("TOXLAB_DATA"):
        # Colab and Binder have no copy of the data: fetch the paper's public sources into the same layout.
        if not (ONLINE_DATA / "clean").exists():
            from toxlab import hub
            hub.download_all(ONLINE_DATA)
        os.environ["TOXLAB_DATA"] = str(ONLINE_DATA)
    data.data_root()  # fail here, with the message that says what to do, rather than mid-chapter
    return get_preset(level, overrides or {})
