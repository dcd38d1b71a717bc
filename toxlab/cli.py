"""The `toxlab` command line.

    toxlab data info [--preset P]             what data was found, documents/characters/tokens per source
    toxlab data download --to DIR             the paper's public sources, for users with internet
    toxlab pretrain --preset P --toxic-fraction F --seed S [--set section.field=value ...]
    toxlab sweep --preset P --seeds S1,S2 [--fractions 0,0.1]
    toxlab probe --preset P --toxic-fraction F --seed S [--pool last|mean]
    toxlab toy --shares 0.01,0.1,0.333 --seeds 10 [--set estimator=mean]
    toxlab book --level L [--only NN]        execute the chapters (papermill) and render the book
    toxlab readme [--level L | --summary PATH] regenerate the README's tables from the latest results

Every command that produces a result prints its path as the last line of output. Bad input exits with
code 2 and one line on stderr that says what to do.
"""

from __future__ import annotations

import argparse
import json
import sys

from toxlab.errors import ConfigError, ToxlabError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints the whole usage)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be integers separated by commas, got {text!r}") from None


def _fractions(text: str) -> list[float]:
    try:
        return [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"fractions must be numbers separated by commas, got {text!r}") from None


def _fraction(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"toxic fraction must be a number such as 0.1, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    from toxlab.config import DEFAULT_PRESET
    parser = _Parser(prog="toxlab", description="Reproduce 'When Bad Data Leads to Good Models'.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def preset_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", default=DEFAULT_PRESET, help="smoke, cpu (default) or gpu")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set train.lr=1e-3 (repeatable)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    data_cmd = sub.add_parser("data", help="inspect or fetch the data folder")
    data_sub = data_cmd.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    info = data_sub.add_parser("info", help="what data was found, with token counts per source")
    preset_args(info)
    download = data_sub.add_parser("download", help="write the paper's public sources (needs internet)")
    download.add_argument("--to", required=True, help="folder to write the data layout into")
    download.add_argument("--max-docs", type=int, default=None, help="cap each source (for a quick look)")

    pre = sub.add_parser("pretrain", help="train (or reuse) one model; prints its folder last")
    preset_args(pre)
    pre.add_argument("--toxic-fraction", type=_fraction, required=True, help="f in [0, 0.5]")
    pre.add_argument("--seed", type=int, default=0)

    sw = sub.add_parser("sweep", help="one model per toxic fraction and seed; prints the summary last")
    preset_args(sw)
    sw.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated, e.g. 0,1,2")
    sw.add_argument("--fractions", type=_fractions, default=None, help="default: 0,0.05,...,0.25")
    pr = sub.add_parser("probe", help="probe every head of one model; prints the summary JSON last")
    preset_args(pr)
    pr.add_argument("--toxic-fraction", type=_fraction, required=True, help="f in [0, 0.5]")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--pool", default="last", help="last (the paper) or mean over tokens")

    ty = sub.add_parser("toy", help="the toy entanglement experiment; prints the summary JSON last")
    ty.add_argument("--shares", type=_fractions, default=[0.01, 0.03, 0.1, 0.2, 1 / 3],
                    help="shares of the rare chain, comma-separated, in (0, 1/3]")
    ty.add_argument("--seeds", type=int, default=10, help="number of seeds (0 .. N-1)")
    ty.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a ToyConfig field, e.g. --set estimator=mean --set d_model=8")

    book = sub.add_parser("book", help="execute the chapters with papermill and render the book")
    book.add_argument("--level", default=DEFAULT_PRESET, help="smoke, cpu (default) or gpu")
    book.add_argument("--only", default=None, metavar="NN", help="re-run one chapter, e.g. --only 03")
    book.add_argument("--force", action="store_true", help="re-execute chapters even if unchanged")
    book.add_argument("--no-html", action="store_true", help="execute the chapters only")
    book.add_argument("--out", default=None, help="build a separate copy of the book in this folder")

    readme = sub.add_parser("readme", help="regenerate the README's results and benchmark tables")
    readme.add_argument("--level", default=None, help="take the sweep of this book level (its preset and seeds)")
    readme.add_argument("--summary", default=None, help="or a sweep summary.json (as `toxlab sweep` prints)")
    return parser


def _config(args):
    from toxlab.config import get_preset, parse_assignments
    return get_preset(args.preset, parse_assignments(args.overrides))


def run(args) -> str | None:
    from toxlab import stages
    if args.command == "data" and args.data_command == "download":
        from toxlab import hub
        return str(hub.download_all(args.to, max_docs=args.max_docs))
    if args.command == "book":
        from toxlab import book
        return str(book.build(args.level, only=args.only, force=args.force, html=not args.no_html,
                              log=lambda m: print(m, flush=True), out=args.out))
    if args.command == "toy":
        from toxlab.toy import ToyConfig, parse_overrides
        if args.seeds < 1:
            raise ConfigError(f"--seeds {args.seeds}: give at least 1")
        condition = parse_overrides(ToyConfig(), args.overrides)
        entry = stages.toy(condition, args.shares, list(range(args.seeds)))
        summary = entry.json("summary.json")
        print(f"{'share':>7s} {'rare':>6s} {'control':>7s} {'diff':>7s} {'p':>7s}")
        for row in summary["summary"]:
            print(f"{row['share']:7.3f} {row['rare']:6.3f} {row['control']:7.3f} {row['difference']:7.3f} "
                  f"{row['p_value']:7.3f}")
        return str(entry.file("summary.json"))
    if args.command == "readme":
        from toxlab import report
        summary, probes = args.summary, []
        if args.level:
            from toxlab import artifacts, book
            from toxlab.config import get_preset
            seeds = (book.level_params(args.level).get("common") or {}).get("seeds", [0])
            config = get_preset(args.level)
            summary = stages.sweep(config, seeds, log=lambda m: print(m, flush=True)).file("summary.json")
            for fraction in stages.fractions_for(config):
                for seed in seeds:
                    try:
                        with artifacts.lookup_only():  # only what the book already computed
                            probes.append(stages.probe(config.with_fraction(fraction), seed).json("summary.json"))
                    except artifacts.CacheMiss:
                        pass
        return str(report.update_readme(summary, probes=probes))
    config = _config(args)
    if args.command == "data":
        entry = stages.data_info(config)
        report = entry.json("sources.json")
        print(f"data folder: {report['root']}")
        print(f"{'source':26s} {'role':7s} {'documents':>10s} {'characters':>12s} {'tokens':>11s}")
        for row in report["sources"]:
            if not row["present"]:
                print(f"{row['source']:26s} {row['role']:7s} MISSING {row['file']}")
                continue
            if "bytes" in row:
                print(f"{row['source']:26s} {row['role']:7s} {'':>10} {row['bytes']:>12,} bytes")
                continue
            print(f"{row['source']:26s} {row['role']:7s} {row['documents']:>10,} {row['chars']:>12,} "
                  f"{row.get('tokens', 0):>11,}")
        return str(entry.file("sources.json"))
    if args.command == "pretrain":
        entry = stages.pretrain(config.with_fraction(args.toxic_fraction), args.seed, progress=not args.quiet)
        metrics = entry.json("metrics.json")
        print(json.dumps({k: metrics[k] for k in ("toxic_fraction", "realised_fraction", "seed", "val_loss",
                                                   "c4_loss", "unigram_val_loss", "tokens_per_s")}))
        return str(entry.file("model"))
    if args.command == "probe":
        entry = stages.probe(config.with_fraction(args.toxic_fraction), args.seed, pool=args.pool,
                             progress=not args.quiet)
        summary = entry.json("summary.json")
        heads = summary["heads"]
        print(json.dumps({"toxic_fraction": summary["toxic_fraction"], "seed": summary["seed"], "pool": args.pool,
                          "majority_baseline": round(summary["majority_baseline"], 4),
                          "head_accuracy_mean": round(heads["val_accuracy"]["mean"], 4),
                          "head_accuracy_max": round(heads["val_accuracy"]["max"], 4),
                          "head_auc_mean": round(heads["val_auc"]["mean"], 4),
                          "head_auc_max": round(heads["val_auc"]["max"], 4),
                          "entanglement_mean": round(summary["entanglement"]["mean"], 4)}))
        return str(entry.file("summary.json"))
    if args.command == "sweep":
        fractions = tuple(args.fractions) if args.fractions else None
        if fractions:
            for f in fractions:
                config.with_fraction(f)  # validate every fraction before training any model
        entry = stages.sweep(config, args.seeds, fractions, progress=not args.quiet,
                             log=lambda m: print(m, flush=True))
        summary = entry.json("summary.json")
        print(f"{'fraction':>8s} {'realised':>8s} {'seed':>4s} {'val CE':>7s} {'C4 CE':>7s} {'unigram':>7s}")
        for r in summary["runs"]:
            print(f"{r['toxic_fraction']:8.2f} {r['realised_fraction']:8.4f} {r['seed']:4d} "
                  f"{r['val_loss']:7.3f} {r['c4_loss']:7.3f} {r['unigram_val_loss']:7.3f}")
        return str(entry.file("summary.json"))
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = run(args)
    except ToxlabError as err:
        print(f"toxlab: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("toxlab: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    if path:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
