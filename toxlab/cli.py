"""The `toxlab` command line.

    toxlab data info [--preset P]             what data was found, documents/characters/tokens per source
    toxlab data download --to DIR             the paper's public sources, for users with internet
    toxlab data verify [--record] [--checksums FILE]  check the data folder against recorded SHA-256 sums
    toxlab stages verify [--record]           check that no cached stage's code changed without its version
    toxlab pretrain --preset P --toxic-fraction F --seed S [--set section.field=value ...]
    toxlab sweep --preset P --seeds S1,S2 [--fractions 0,0.1]
    toxlab probe --preset P --toxic-fraction F --seed S [--pool last|mean]
    toxlab probe --model DIR [--preset P]      the same for any Hugging Face causal LM (a save_pretrained
                                             folder or a hub name; toxlab.model.adapters lists the families)
    toxlab evaluate --preset P --toxic-fraction F --seed S --alpha A --k K --benchmark {toxigen,rtp,ce}
    toxlab evaluate --model DIR [--preset P] --alpha A --k K --benchmark {toxigen,rtp,ce}
    toxlab baseline --method {prompt,sft,dpo,meda,inst} --preset P --toxic-fraction F --seed S
                    [--benchmark toxigen|rtp|ce] [--alpha A]   a detoxification baseline on one
                                                   benchmark (alpha > 0: followed by ITI)
    toxlab toy --shares 0.01,0.1,0.333 --seeds 10 [--set estimator=mean]
    toxlab book --level L [--only NN[,NN]] [--execute | --force] [-p NAME=VALUE --out DIR]
                                             render the book from the executed chapters; --execute
                                             (re-)executes stale and missing chapters (papermill)
    toxlab readme [--level L]                the README's tables from what the executed chapters hold
    toxlab bench {train,probe,iti,judge,book} [ARGS]   one benchmark (bench/NAME_bench.py in a clone of the
                                             repository): JSON lines, merged into bench/results.json
    toxlab judge score --input FILE [--judge NAME] [--level L]   one {"toxicity": p} JSON line per text
    toxlab judge card [--level L]            the toxicity judge's validation table, failure modes and speed

Every command that produces a result prints its path as the last line of output. Bad input exits with
code 2 and one line on stderr that says what to do.
"""

from __future__ import annotations

import argparse
import json
import sys

from toxlab.core import stage_code
from toxlab.core.config import DEFAULT_PRESET, get_preset, parse_assignments
from toxlab.core.errors import CacheError, ConfigError, DataError, ToxlabError


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


def _alpha(text: str) -> float:
    from toxlab.interp.intervene import MAX_ALPHA
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"alpha must be a number such as 4, 8 or 12, got {text!r}") from None
    if not abs(value) <= MAX_ALPHA:  # also catches nan
        raise argparse.ArgumentTypeError(f"alpha must be a finite number between -{MAX_ALPHA:g} and {MAX_ALPHA:g}, "
                                         f"got {text!r}")
    return value


def _cost_target(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"cost target must be a finite positive number of nats, e.g. 0.05, "
                                         f"got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="toxlab", description="Reproduce 'When Bad Data Leads to Good Models'.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def preset_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--preset", default=DEFAULT_PRESET, help="smoke, cpu (default) or gpu")
        p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config field, e.g. --set train.lr=1e-3 (repeatable)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    def model_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default=None, metavar="DIR",
                       help="any Hugging Face causal LM instead of a model the book trains: a save_pretrained "
                            "folder or a hub name (e.g. EleutherAI/pythia-160m, needs internet once); --preset "
                            "then sets the sample sizes, the judge and the held-out text")

    data_cmd = sub.add_parser("data", help="inspect or fetch the data folder")
    data_sub = data_cmd.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    info = data_sub.add_parser("info", help="what data was found, with token counts per source")
    preset_args(info)
    info.set_defaults(handler=_data_info)
    download = data_sub.add_parser("download", help="write the paper's public sources (needs internet)")
    download.add_argument("--to", required=True, help="folder to write the data layout into")
    download.add_argument("--max-docs", type=int, default=None, help="cap each source (for a quick look)")
    download.set_defaults(handler=_data_download)
    verify = data_sub.add_parser("verify", help="check every data file against its recorded size and SHA-256")
    verify.add_argument("--record", action="store_true",
                        help="record the sums of the data folder as it is now (after a deliberate change)")
    verify.add_argument("--checksums", default=None, metavar="FILE",
                        help="the sums file (default: toxlab/data/data_checksums.json, the staged shared/data)")
    verify.set_defaults(handler=_data_verify)

    pack = data_sub.add_parser("pack", help="a compact copy of the data and the judge's encoder for a machine "
                                           "that can carry only a few tens of MB (the gpu level's one-script run)")
    pack.add_argument("dest", help="new folder; it gets data/ (TOXLAB_DATA) and encoder/ (TOXLAB_ENCODER)")
    pack.add_argument("--preset", default="gpu", help="the preset whose data needs size the cut (default gpu)")
    pack.set_defaults(handler=_data_pack)

    stages_cmd = sub.add_parser("stages", help="the cached stages' code against their versions")
    stages_sub = stages_cmd.add_subparsers(dest="stages_command", required=True, parser_class=_Parser)
    stage_verify = stages_sub.add_parser("verify", help="check that the code each cached stage runs is the code "
                                                        "recorded for its version (toxlab/core/stage_code.json)")
    stage_verify.add_argument("--record", action="store_true",
                              help="record every stage's code as it is now (after bumping the version of each "
                                   "stage whose results the change alters)")
    stage_verify.set_defaults(handler=_stages_verify)

    gpu_cmd = sub.add_parser("gpu", help="bring a gpu-level run of bench/gpu_book.sh into the book")
    gpu_sub = gpu_cmd.add_subparsers(dest="gpu_command", required=True, parser_class=_Parser)
    gpu_import = gpu_sub.add_parser("import", help="chapters, numbers and a page from the returned archives")
    gpu_import.add_argument("runs", nargs="+", help="per run (oldest first), the folders its archives were unpacked "
                            "into, comma-separated in call order")
    gpu_import.add_argument("--command", dest="command_lines", action="append",
                            help="per run, in the same order, the command that ran, as the page should show it "
                                 "(default: OUT=$OUT bash bench/gpu_book.sh gpu)")
    gpu_import.set_defaults(handler=_gpu_import)

    pre = sub.add_parser("pretrain", help="train (or reuse) one model; prints its folder last")
    preset_args(pre)
    pre.add_argument("--toxic-fraction", type=_fraction, required=True, help="f in [0, 0.5]")
    pre.add_argument("--seed", type=int, default=0)
    pre.set_defaults(handler=_pretrain)

    sw = sub.add_parser("sweep", help="one model per toxic fraction and seed; prints the summary last")
    preset_args(sw)
    sw.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated, e.g. 0,1,2")
    sw.add_argument("--fractions", type=_fractions, default=None, help="default: 0,0.05,...,0.25")
    sw.set_defaults(handler=_sweep)

    sc = sub.add_parser("scaling", help="models of several sizes on several clean-token budgets at f = 0, read on "
                                        "C4 bits per byte, held-out loss and head probes; prints the rows as JSON last")
    preset_args(sc)
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--sizes", default=None, help="comma-separated LAYERSxWIDTH shapes, e.g. 2x128,4x128 (4 heads "
                                                  "below width 256, else 8; d_mlp = 4 x width); default: the cpu "
                                                  "level's")
    sc.add_argument("--budgets", default=None, help="comma-separated clean-token budgets, e.g. 800000,1600000; "
                                                    "default: the cpu level's")
    sc.add_argument("--lrs", default=None, help="comma-separated peak learning rates, each tried on every shape and "
                                                "budget, e.g. 2e-3,4e-3; default: the preset's (or --set train.lr)")
    sc.add_argument("--no-probe", action="store_true", help="skip the head probes")
    sc.set_defaults(handler=_scaling)

    pr = sub.add_parser("probe", help="probe every head of one model; prints the summary JSON last")
    preset_args(pr)
    model_arg(pr)
    pr.add_argument("--toxic-fraction", type=_fraction, default=None, help="f in [0, 0.5] (a model the book trains)")
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--pool", default="last", help="last (the paper) or mean over tokens")
    pr.set_defaults(handler=_probe)

    ev = sub.add_parser("evaluate", help="one benchmark of one model under ITI; prints the result JSON last")
    preset_args(ev)
    model_arg(ev)
    ev.add_argument("--toxic-fraction", type=_fraction, default=None, help="f in [0, 0.5] (a model the book trains)")
    ev.add_argument("--seed", type=int, default=0)
    dose = ev.add_mutually_exclusive_group()
    dose.add_argument("--alpha", type=_alpha, default=0.0,
                      help="ITI strength: 0 (none); the paper's 4, 8, 12 (weak, mid, strong); negative: towards toxic")
    dose.add_argument("--strength", default=None,
                      help="weak, mid or strong: this model's alpha calibrated to a fixed KL cost "
                           "(toxlab.evaluation.evaluate)")
    dose.add_argument("--cost-target", type=_cost_target, default=None, metavar="NATS",
                      help="the alpha at which ITI costs this KL (nats/token) on held-out clean text")
    ev.add_argument("--k", type=int, default=None, help="heads to shift (default: the paper's 30/256, scaled)")
    ev.add_argument("--direction", default="mass_mean",
                    help="mass_mean (default), probe, random, or leace (LEACE erasure)")
    ev.add_argument("--ranking", default="cv_auc",
                    help="how heads are chosen: cv_auc (default), val_accuracy (the paper's), val_auc, "
                         "val_balanced_accuracy")
    ev.add_argument("--positions", default="reference",
                    help="where the shift applies in generation: reference (last prompt position and every "
                         "generated one; default) or all")
    ev.add_argument("--benchmark", required=True, help="toxigen, rtp or ce (capability)")
    ev.add_argument("--eval-set", dest="eval_overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a benchmark setting, e.g. --eval-set rtp_samples=25 (repeatable)")
    ev.set_defaults(handler=_evaluate)

    bl = sub.add_parser("baseline", help="a detoxification baseline on one benchmark; prints the result JSON last")
    preset_args(bl)
    bl.add_argument("--method", required=True, help="prompt, sft, dpo, meda or inst")
    bl.add_argument("--toxic-fraction", type=_fraction, required=True, help="f in [0, 0.5]")
    bl.add_argument("--seed", type=int, default=0)
    bl.add_argument("--benchmark", default="toxigen", help="toxigen (default), rtp or ce (capability)")
    bl.add_argument("--alpha", type=_alpha, default=0.0,
                    help="follow prompt, sft or dpo with the plain model's ITI at this strength (default 0: none)")
    bl.add_argument("--eval-set", dest="eval_overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a benchmark setting, e.g. --eval-set rtp_samples=25 (repeatable)")
    bl.add_argument("--baseline-set", dest="baseline_overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a baseline budget, e.g. --baseline-set sft_steps=100 (repeatable)")
    bl.set_defaults(handler=_baseline)

    ty = sub.add_parser("toy", help="the toy entanglement experiment; prints the summary JSON last")
    ty.add_argument("--shares", type=_fractions, default=[0.01, 0.03, 0.1, 0.2, 1 / 3],
                    help="shares of the rare chain, comma-separated, in (0, 1/3]")
    ty.add_argument("--seeds", type=int, default=10, help="number of seeds (0 .. N-1)")
    ty.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a ToyConfig field, e.g. --set estimator=mean --set d_model=8")
    ty.set_defaults(handler=_toy)

    book = sub.add_parser("book", help="render the book from the executed chapters (executing them if asked)")
    book.add_argument("--level", default=DEFAULT_PRESET, help="smoke, cpu (default) or gpu")
    book.add_argument("--only", default=None, metavar="NN[,NN]", help="execute only these chapters, e.g. --only 03 "
                                                                       "or --only 01,02,03,04")
    book.add_argument("--execute", action="store_true", help="execute the stale and missing chapters (prints "
                                                             "what it computes and its time first)")
    book.add_argument("--force", action="store_true", help="execute the chapters even if unchanged")
    book.add_argument("--no-html", action="store_true", help="execute the chapters only")
    book.add_argument("--out", default=None, help="build a separate copy of the book in this folder")
    book.add_argument("-p", "--param", action="append", default=[], metavar="NAME=VALUE",
                      help="override a chapter parameter (YAML value, e.g. -p seeds=[0]); needs --out, "
                           "and executes")
    book.set_defaults(handler=_book)

    bench = sub.add_parser("bench", help="run one benchmark (a clone's bench/NAME_bench.py); --help after NAME "
                                         "lists its options")
    bench.add_argument("name", help=", ".join(BENCHES))
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed to the benchmark script")

    readme = sub.add_parser("readme", help="regenerate the README's tables from the executed chapters (computes "
                                           "nothing)")
    readme.add_argument("--level", default=DEFAULT_PRESET, help="the level book/chapters was executed at "
                                                                "(default cpu)")
    readme.set_defaults(handler=_readme)

    judge = sub.add_parser("judge", help="score texts with a toxicity judge, or print the judge card")
    judge_sub = judge.add_subparsers(dest="judge_command", required=True, parser_class=_Parser)
    score = judge_sub.add_parser("score", help='one {"toxicity": p} JSON line per input text, in input order')
    score.add_argument("--input", required=True, metavar="FILE",
                       help="JSON lines with a `text` field, or plain text with one text per line; - reads stdin")
    score.add_argument("--judge", default="minilm", metavar="NAME",
                       help="minilm (default), profanity-check, hatesonar, toxigen-roberta, detoxify, perspective")
    score.add_argument("--level", default=DEFAULT_PRESET, help="the MiniLM judge's level: smoke, cpu (default), gpu")
    score.set_defaults(handler=_judge_score)
    card = judge_sub.add_parser("card", help="the judge card: validation table, failure modes and speed")
    card.add_argument("--level", default=DEFAULT_PRESET, help="smoke, cpu (default) or gpu")
    card.set_defaults(handler=_judge_card)
    return parser


def _config(args):
    return get_preset(args.preset, parse_assignments(args.overrides))


#: `toxlab bench NAME` runs bench/NAME_bench.py; each prints JSON lines with `bench`, `preset`, `device` and
#: its figure (train: mfu, probe: speedup, iti: overhead_pct, judge: texts_per_s, book: wall_s).
BENCHES = ("train", "probe", "iti", "judge", "book")


def _bench(name: str, bench_args: list[str]) -> int:
    import subprocess

    from toxlab.book.builder import PROJECT_ROOT
    if name not in BENCHES:
        raise ConfigError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHES)}")
    script = PROJECT_ROOT / "bench" / f"{name}_bench.py"
    if not script.exists():
        raise ConfigError(f"{script} is missing: the benchmarks live in a clone of the repository, not in the "
                          "installed package (git clone, then pip install -e .)")
    return subprocess.run([sys.executable, str(script), *bench_args], cwd=PROJECT_ROOT).returncode


# ---------------------------------------------------------------------------------------------- handlers
# One handler per subcommand (`build_parser` names it with set_defaults): each takes the parsed arguments and
# returns the path of what it produced, or None. Imports of the layers below sit inside the handlers, so that
# `toxlab --help` and the light subcommands (data verify, stages verify, book, readme) start without loading
# torch and transformers (several seconds), which every stage module imports.
def _print_table(columns: list[tuple[str, int, str]], rows: list[tuple]) -> None:
    """A fixed-width table on stdout: columns are (header, width, format spec), each right-aligned."""
    print(" ".join(f"{header:>{width}s}" for header, width, _ in columns))
    for row in rows:
        print(" ".join(f"{value:>{width}{spec}}" for value, (_, width, spec) in zip(row, columns)))


def _data_info(args) -> str:
    from toxlab.pipeline import mixtures
    entry = mixtures.data_info(_config(args))
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


def _data_download(args) -> str:
    from toxlab.data import hub
    return str(hub.download_all(args.to, max_docs=args.max_docs))


def _data_pack(args) -> str:
    from pathlib import Path

    from toxlab.data import pack
    from toxlab.judges.encoder import pack_encoder
    dest = Path(args.dest)
    summary = pack.pack_data(dest / "data", get_preset(args.preset))
    encoder = pack_encoder(dest / "encoder")
    cuts = ", ".join(f"{name}: {f['kept_documents']:,} of {f['documents']:,} rows"
                     for name, f in summary["files"].items() if "kept_documents" in f)
    print(f"data {summary['bytes'] / 1e6:.1f} MB ({cuts or 'nothing cut'}), encoder {encoder['bytes'] / 1e6:.1f} MB")
    return str(dest)


def _gpu_import(args) -> str:
    from pathlib import Path

    from toxlab.book import builder, gpu_run
    runs = [[Path(d) for d in run.split(",") if d] for run in args.runs]
    commands = args.command_lines or ["OUT=$OUT bash bench/gpu_book.sh gpu"] * len(runs)
    for summary in gpu_run.import_run(runs, builder.BOOK, commands):
        print(f"imported {len(summary['models'])} models, {len(summary['probes'])} probes and "
              f"{len(summary['iti'])} ITI points")
    return str(builder.BOOK / "gpu_level.md")


def _book(args) -> str:
    from toxlab.book import builder
    return str(builder.build(args.level, only=args.only, execute=args.execute, force=args.force,
                             html=not args.no_html, log=lambda m: print(m, flush=True), out=args.out,
                             params=args.param))


def _toy(args) -> str:
    from toxlab.interp.toy import ToyConfig, parse_overrides
    from toxlab.pipeline import probing
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: give at least 1")
    condition = parse_overrides(ToyConfig(), args.overrides)
    entry = probing.toy(condition, args.shares, list(range(args.seeds)))
    summary = entry.json("summary.json")
    _print_table([("share", 7, ".3f"), ("rare", 6, ".3f"), ("control", 7, ".3f"), ("diff", 7, ".3f"), ("p", 7, ".3f")],
                 [(r["share"], r["rare"], r["control"], r["difference"], r["p_value"]) for r in summary["summary"]])
    return str(entry.file("summary.json"))


def _readme(args) -> str:
    from toxlab.book import builder, report
    changed = report.regenerate(args.level)
    print(f"readme: {'rewrote' if changed else 'kept'} {report.README.name}'s tables: they "
          f"{'now match' if changed else 'match'} what the chapters in {builder.CHAPTERS} hold")
    return str(report.README)


def _pretrain(args) -> str:
    from toxlab.pipeline import pretraining
    entry = pretraining.pretrain(_config(args).with_fraction(args.toxic_fraction), args.seed, progress=not args.quiet)
    metrics = entry.json("metrics.json")
    print(json.dumps({k: metrics[k] for k in ("toxic_fraction", "realised_fraction", "seed", "val_loss",
                                               "c4_loss", "unigram_val_loss", "tokens_per_s")}))
    return str(entry.file("model"))


def _probe(args) -> str:
    _one_model(args)
    if args.model is not None:
        return _external(args)
    from toxlab.pipeline import probing
    entry = probing.probe(_config(args).with_fraction(args.toxic_fraction), args.seed, pool=args.pool,
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


def _scaling(args) -> str:
    from toxlab.pipeline import scaling
    config = _config(args)
    sizes = scaling.parse_sizes(args.sizes) if args.sizes else scaling.CPU_SIZES
    budgets = scaling.parse_budgets(args.budgets) if args.budgets else scaling.CPU_BUDGETS
    lrs = scaling.parse_lrs(args.lrs) if args.lrs else (None,)
    rows = scaling.sweep(config, sizes, budgets, args.seed, probe=not args.no_probe, progress=not args.quiet,
                         log=lambda m: print(m, flush=True), lrs=lrs)
    _print_table([("model", 8, "s"), ("tokens", 9, ",d"), ("lr", 7, ".1e"), ("tok/param", 9, ".2f"),
                  ("val CE", 7, ".3f"), ("margin", 7, ".3f"), ("C4 bpb", 7, ".3f"), ("head AUC", 8, ".3f"),
                  ("minutes", 7, ".1f")],
                 [(r.size, r.clean_tokens, r.lr, r.tokens_per_param, r.val_ce, r.ce_margin, r.c4_bits_per_byte,
                   r.head_auc, r.train_minutes) for r in rows])
    return json.dumps([r.as_dict() for r in rows])


def _sweep(args) -> str:
    from toxlab.pipeline import pretraining
    config = _config(args)
    fractions = tuple(args.fractions) if args.fractions else None
    if fractions:
        for f in fractions:
            config.with_fraction(f)  # validate every fraction before training any model
    entry = pretraining.sweep(config, args.seeds, fractions, progress=not args.quiet,
                              log=lambda m: print(m, flush=True))
    summary = entry.json("summary.json")
    _print_table([("fraction", 8, ".2f"), ("realised", 8, ".4f"), ("seed", 4, "d"), ("val CE", 7, ".3f"),
                  ("C4 CE", 7, ".3f"), ("unigram", 7, ".3f")],
                 [(r["toxic_fraction"], r["realised_fraction"], r["seed"], r["val_loss"], r["c4_loss"],
                   r["unigram_val_loss"]) for r in summary["runs"]])
    return str(entry.file("summary.json"))


def _evaluate(args) -> str:
    _one_model(args)
    if args.model is not None:
        return _external(args)
    from toxlab.evaluation import evaluate
    from toxlab.interp.intervene import check_direction, check_k, check_positions, check_ranking
    from toxlab.pipeline import common, evaluation
    config = _config(args)
    evaluate.check_benchmark(args.benchmark)  # everything is checked before any model is trained or calibrated
    check_ranking(args.ranking)
    check_positions(args.positions)
    if args.k is not None:
        check_k(args.k, config.model.n_layers * config.model.n_heads)
    if args.direction != "leace":
        check_direction(args.direction)
    if args.strength is not None and args.strength not in evaluate.COST_TARGETS:
        raise ConfigError(f"--strength {args.strength!r}; choose one of {', '.join(evaluate.COST_TARGETS)} "
                          "(or give --alpha or --cost-target)")
    if args.direction == "leace" and (args.strength or args.cost_target):
        raise ConfigError("LEACE has no strength to calibrate; use --alpha 1 (erasure proper)")
    eval_config = evaluate.eval_preset(config.preset, parse_assignments(args.eval_overrides))
    cfg = config.with_fraction(args.toxic_fraction)
    common.check_seed(args.seed)
    alpha = args.alpha
    if args.strength or args.cost_target:
        name = args.strength or "target"
        targets = None if args.strength else {"target": args.cost_target}
        alpha = evaluation.calibrated_alphas(cfg, args.seed, args.k, args.direction, args.ranking, targets,
                                         progress=not args.quiet)[name]
    entry = evaluation.evaluate(cfg, args.seed, args.benchmark, alpha, args.k, args.direction, eval_config,
                            progress=not args.quiet, ranking=args.ranking, positions=args.positions)
    result = entry.json("result.json")
    _print_result(result, {k: result[k] for k in ("toxic_fraction", "seed", "benchmark", "alpha", "k", "direction")})
    return str(entry.file("result.json"))


def _one_model(args) -> None:
    """`--model` or `--toxic-fraction`, exactly one."""
    if args.model is not None and args.toxic_fraction is not None:
        raise ConfigError("give --model DIR (any causal LM) or --toxic-fraction F (a model the book trains), not both")
    if args.model is None and args.toxic_fraction is None:
        raise ConfigError("give --toxic-fraction F (a model the book trains, e.g. 0.1) or --model DIR (any causal LM)")


def _external(args) -> str:
    """`probe` and `evaluate` on any causal LM (toxlab.pipeline.external); everything is checked before any work."""
    from toxlab.core.config import parse_assignments
    from toxlab.evaluation import evaluate
    from toxlab.interp.intervene import check_direction, check_k, check_positions, check_ranking
    from toxlab.pipeline import common, external
    level = external.check_level(args.preset)
    if args.overrides:
        raise ConfigError("--set changes the models the book trains; with --model use --eval-set for the benchmarks")
    if args.command == "evaluate":
        evaluate.check_benchmark(args.benchmark)
        check_ranking(args.ranking)
        check_positions(args.positions)
        if args.direction != "leace":
            check_direction(args.direction)
        if args.strength is not None and args.strength not in evaluate.COST_TARGETS:
            raise ConfigError(f"--strength {args.strength!r}; choose one of {', '.join(evaluate.COST_TARGETS)} "
                              "(or give --alpha or --cost-target)")
        if args.direction == "leace" and (args.strength or args.cost_target):
            raise ConfigError("LEACE has no strength to calibrate; use --alpha 1 (erasure proper)")
        eval_config = evaluate.eval_preset(level, parse_assignments(args.eval_overrides))
        common.check_seed(args.seed)
    model = external.resolve_model(args.model)
    if args.command == "evaluate" and args.k is not None:
        check_k(args.k, external.head_sites(model))
    if args.command == "probe":
        entry = external.probe(model, pool=args.pool, progress=not args.quiet)
        summary, heads = entry.json("summary.json"), entry.json("summary.json")["heads"]
        print(json.dumps({"model": args.model, "model_type": summary["model_type"], "pool": args.pool,
                          "majority_baseline": round(summary["majority_baseline"], 4),
                          "head_accuracy_mean": round(heads["val_accuracy"]["mean"], 4),
                          "head_accuracy_max": round(heads["val_accuracy"]["max"], 4),
                          "head_auc_mean": round(heads["val_auc"]["mean"], 4),
                          "head_auc_max": round(heads["val_auc"]["max"], 4),
                          "entanglement_mean": round(summary["entanglement"]["mean"], 4)}))
        return str(entry.file("summary.json"))
    alpha = args.alpha
    if args.strength or args.cost_target:
        name = args.strength or "target"
        targets = None if args.strength else {"target": args.cost_target}
        alpha = external.calibrated_alphas(model, level, args.k, args.direction, args.ranking, targets,
                                           progress=not args.quiet)[name]
    entry = external.evaluate(model, args.benchmark, alpha, args.k, args.direction, level, eval_config,
                              seed=args.seed, progress=not args.quiet, ranking=args.ranking, positions=args.positions)
    result = entry.json("result.json")
    _print_result(result, {"model": args.model, **{k: result[k] for k in ("benchmark", "alpha", "k", "direction")}})
    return str(entry.file("result.json"))


def _print_result(result: dict, shown: dict) -> None:
    """One JSON line: `shown`, then the capability numbers ('ce') or the toxicity metrics."""
    if result["benchmark"] == "ce":
        shown.update({f"{name}_{key}": round(result[name][key], 4) for name in ("clean", "c4")
                      for key in ("ce", "ce_base", "kl")})
    else:
        shown.update({key: round(value, 4) for key, value in result["all"].items() if isinstance(value, float)})
    print(json.dumps(shown))


def _baseline(args) -> str:
    from toxlab import baselines
    from toxlab.evaluation import evaluate
    from toxlab.pipeline import baseline_runs
    config = _config(args)
    baselines.check_method(args.method)
    eval_config = evaluate.eval_preset(config.preset, parse_assignments(args.eval_overrides))
    budget = baselines.baseline_preset(config.preset, parse_assignments(args.baseline_overrides))
    entry = baseline_runs.evaluate_baseline(config.with_fraction(args.toxic_fraction), args.seed, args.method,
                                     args.benchmark, budget, eval_config, progress=not args.quiet, alpha=args.alpha)
    result = entry.json("result.json")
    _print_result(result, {"method": args.method,
                           **{k: result[k] for k in ("toxic_fraction", "seed", "benchmark", "alpha")}})
    return str(entry.file("result.json"))


def _judge_score(args) -> None:
    from toxlab.pipeline import judging
    texts = read_texts(args.input)  # read (and reject bad input) before loading any judge
    scores = judging.get_judge(args.judge, args.level).score(texts) if texts else []
    for p in scores:  # the texts themselves are never printed
        print(json.dumps({"toxicity": float(p)}))
    return None


def _judge_card(args) -> str:
    from toxlab.analysis.card import format_card
    from toxlab.pipeline import judging
    entry = judging.judge_card(args.level)
    print(format_card(entry.json("card.json")))
    return str(entry.file("card.json"))


def _data_verify(args) -> str | None:
    from pathlib import Path

    from toxlab.data import corpora
    checksums = Path(args.checksums) if args.checksums else corpora.CHECKSUMS
    if args.record:
        return str(corpora.record_checksums(path=checksums))
    root = corpora.data_root()
    checks = corpora.verify(root, checksums)
    for check in checks:
        print(f"{check.status:<17s} {check.path}" + (f" ({check.detail})" if check.detail else ""))
    problem = corpora.verify_problem(checks, root, checksums)
    if problem:
        raise DataError(problem)
    print(f"all {sum(c.status == 'ok' for c in checks)} recorded files of {root} match {checksums.name}")
    return None


def _stages_verify(args) -> str | None:
    if args.record:
        return str(stage_code.record())
    checks, problem = stage_code.verify()
    for check in checks:
        print(f"{check.status:<15s} {check.stage}" + (f" ({check.detail})" if check.detail else ""))
    if problem:
        print(problem)
        raise CacheError(f"{sum(c.status != 'ok' for c in checks)} stage(s) differ from {stage_code.RECORD.name}: "
                         "bump the version of each whose results the change alters, then run "
                         f"`{stage_code.RECORD_COMMAND}`")
    print(f"all {len(checks)} stages run the code recorded for their versions in {stage_code.RECORD.name}")
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "quiet", False):  # the weight loading and saving bars of transformers too
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()
    try:
        if args.command == "bench":
            return _bench(args.name, args.bench_args)
        path = args.handler(args)
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


def read_texts(path: str) -> list[str]:
    """Texts to score from a file ('-' = stdin), in order: JSON lines with a string `text` field when the
    first non-blank line starts with '{' (blank lines skipped), else plain text, one text per line. Bad
    input raises DataError naming the line number, never the text."""
    try:
        if path == "-":
            content = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                content = handle.read()
    except UnicodeDecodeError:
        raise DataError(f"{path} is not UTF-8 text; convert it (e.g. iconv -t utf-8)") from None
    except OSError as err:
        raise DataError(f"cannot read {path} ({err.strerror or type(err).__name__}); check the path") from None
    lines = content.splitlines()
    first = next((line.strip() for line in lines if line.strip()), "")
    if not first.startswith("{"):
        return lines
    texts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path} line {number} is not valid JSON; give JSON lines with a `text` field, or "
                            f"plain text with one text per line") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise DataError(f"{path} line {number} has no string `text` field; give each JSON line one") from None
        texts.append(row["text"])
    return texts
