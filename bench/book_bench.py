"""Wall time of a whole book level: every chapter executed by papermill and the HTML built.

cold: a fresh, empty cache (every stage computed: tokenizer, mixtures, pretraining, probes, judge, ...);
warm: the current cache (`TOXLAB_CACHE`), every chapter re-executed (`--force`), every stage read back.
The book is written to a scratch folder, so the repository's book/ is left alone. Prints one JSON line
and merges it into bench/results.json: `wall_s`, with `mode`, `preset` (the level) and `device`, and
`stage_s`, the build times the executed chapters' ledgers add up to (`toxlab.book.builder.cost`): from an empty
cache, wall_s minus stage_s is what executing the chapters costs beyond their stages. `--only` and `--param`
time a part or a variant of a level, as `toxlab book` takes them.

    python bench/book_bench.py --level smoke --mode cold
    python bench/book_bench.py --level cpu --mode cold --only 01,02,03,04 --param seeds=[0]
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

from toxlab.book import builder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import device_name, record  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--level", default="smoke", help="smoke, cpu or gpu")
    parser.add_argument("--mode", default="warm", choices=("cold", "warm"))
    parser.add_argument("--no-html", action="store_true", help="execute the chapters only")
    parser.add_argument("--only", default=None, metavar="NN[,NN]", help="these chapters only")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a chapter parameter")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="toxlab-book-bench-") as scratch:
        env = dict(os.environ)
        if args.mode == "cold":
            env["TOXLAB_CACHE"] = str(Path(scratch) / "cache")
        command = [sys.executable, "-m", "toxlab.cli", "book", "--level", args.level, "--force",
                   "--out", str(Path(scratch) / "book"), *(["--no-html"] if args.no_html else []),
                   *(["--only", args.only] if args.only else []), *(f"--param={p}" for p in args.param)]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.perf_counter() - start
        stage_s = builder.cost(Path(scratch) / "book" / "chapters")["stage_s"] if done.returncode == 0 else None
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return done.returncode
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    line = {"bench": "book", "preset": args.level, "device": device_name(device), "mode": args.mode,
            "html": not args.no_html, "wall_s": round(wall, 1), "stage_s": round(stage_s, 1),
            "torch": torch.__version__}
    if args.only or args.param:
        line["part"] = "; ".join([*([f"chapters {args.only}"] if args.only else []), *args.param])
    record(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
