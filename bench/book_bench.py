"""Wall time of a whole book level: every chapter executed by papermill and the HTML built.

cold: a fresh, empty cache (every stage computed: tokenizer, mixtures, pretraining, probes, judge, ...);
warm: the current cache (`TOXLAB_CACHE`), every chapter re-executed (`--force`), every stage read back.
The book is written to a scratch folder, so the repository's book/ is left alone. Prints one JSON line
and merges it into bench/results.json: `wall_s`, with `mode`, `preset` (the level) and `device`.

    python bench/book_bench.py --level smoke --mode cold
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", default="smoke", help="smoke, cpu or gpu")
    parser.add_argument("--mode", default="warm", choices=("cold", "warm"))
    parser.add_argument("--no-html", action="store_true", help="execute the chapters only")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="toxlab-book-bench-") as scratch:
        env = dict(os.environ)
        if args.mode == "cold":
            env["TOXLAB_CACHE"] = str(Path(scratch) / "cache")
        command = [sys.executable, "-m", "toxlab.cli", "book", "--level", args.level, "--force",
                   "--out", str(Path(scratch) / "book"), *(["--no-html"] if args.no_html else [])]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return done.returncode
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    record({"bench": "book", "preset": args.level, "device": device_name(device), "mode": args.mode,
            "html": not args.no_html, "wall_s": round(wall, 1), "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
