"""What every stage module shares: the content hash of the data files a stage reads, the seed check and the
progress line on stderr."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import numpy as np

from toxlab.core import artifacts
from toxlab.core.errors import ConfigError
from toxlab.data import corpora


@functools.lru_cache(maxsize=8)
def data_fingerprint(root: Path, names: tuple[str, ...]) -> dict[str, str]:
    """SHA-256 of each data file a stage reads: results are keyed by content, not by path."""
    corpora.check_layout(names, root)
    return {name: artifacts.file_sha256(corpora.resolve(name, root)) for name in names}


def check_seed(seed) -> None:
    """A training seed is a non-negative integer (numpy and torch generators reject anything else)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer, e.g. 0")


def log_line(message: str) -> None:
    """One progress line on stderr (stdout is the command line's result)."""
    print(message, file=sys.stderr, flush=True)
