"""Bringing a gpu-level run home (toxlab.book.gpu_run): numbers from the returned JSONs, chapters relabelled."""

from __future__ import annotations

import json

import nbformat
import pytest

from toxlab.book import builder, gpu_run
from toxlab.core.errors import ToxlabError

GPU = "NVIDIA H100 80GB HBM3"


WEB_DATA = {"clean_recipe": [["wikinews", 0.3], ["blogs", 0.4], ["reddit", 0.3]], "clean_filter": "c4"}
FIRST_DATA = {"clean_recipe": [["wikinews", 1.0]], "clean_filter": "none"}


def _run_dir(root, slope=0.01, calls=((("01", 0, 5), ("03", 0, 40))), data=WEB_DATA):
    """A fake unpacked archive: 3 fractions x 2 seeds whose probe AUC rises by `slope` per unit fraction, trained on
    `data` (their cache entries' config)."""
    (root / "cache").mkdir(parents=True)
    (root / "machine.txt").write_text(f"name, memory.total [MiB], driver_version\n{GPU}, 81559 MiB, 580\n"
                                      "python 3.12.3 torch 2.11.0\n")
    (root / "timings.jsonl").write_text("".join(json.dumps({"chapter": c, "rc": rc, "wall_s": w}) + "\n"
                                                for c, rc, w in calls))
    for i, (f, s) in enumerate((f, s) for f in (0.0, 0.1, 0.2) for s in (0, 1)):
        model = root / "cache" / "pretrain" / f"m{i}"
        model.mkdir(parents=True)
        (model / "metrics.json").write_text(json.dumps({
            "preset": "gpu", "toxic_fraction": f, "seed": s, "val_loss": 5.6 - f + 0.001 * s, "c4_loss": 6.3,
            "unigram_val_loss": 7.4, "tokens_per_s": 3e5, "train_time_s": 10.0, "steps": 500,
            "train_tokens_seen": 3_000_000, "device": "cuda",
            "precision": "bf16", "params": {"total": 41_943_040}}))
        (model / "config.json").write_text(json.dumps({"preset": "gpu", "data": {**data, "toxic_fraction": f}}))
        probe = root / "cache" / "probe" / f"p{i}"
        probe.mkdir(parents=True)
        (probe / "summary.json").write_text(json.dumps({
            "toxic_fraction": f, "seed": s, "pool": "last", "head_val_auc": [[0.6 + slope * f + 0.001 * s] * 4],
            "resid_val_auc": [0.7]}))
    (root / "cache" / "bench_results.json").write_text(json.dumps([
        {"bench": "train", "device": GPU, "tokens_per_s": 6e5, "mfu": 0.23, "peak_gflops": 785e3, "steps": 30,
         "compile": True},
        {"bench": "loop", "device": GPU, "tokens_per_s_bare": 6e5, "tokens_per_s_loop": 5e5, "overhead_pct": 20.0},
        {"bench": "compile", "device": GPU, "tokens_per_s_eager": 4e5, "tokens_per_s_compiled": 6e5,
         "compile_s": 9.0, "break_even_steps": 1300, "run_steps": 488},
        {"bench": "train", "device": "NVIDIA H200", "tokens_per_s": 1e6, "mfu": 0.39}]))
    chapters = root / "book" / "chapters"
    chapters.mkdir(parents=True)
    cells = [nbformat.v4.new_markdown_cell("# The sweep\nsee {numref}`fig-training`"),
             nbformat.v4.new_markdown_cell("```{glue:figure} fig\n:name: fig-training\n```")]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"toxlab": {"level": "gpu"}})
    nbformat.write(nb, chapters / "03_contamination.ipynb")
    return root


def test_summary_recovers_planted_trends(tmp_path):
    summary = gpu_run.summarise([_run_dir(tmp_path / "a", slope=0.1)])
    loss = summary["trends"]["held-out clean loss"]
    auc = summary["trends"]["mean head probe AUC (last token)"]
    assert loss["slope"] == pytest.approx(-1.0, abs=1e-6) and loss["n"] == 6
    assert auc["slope"] == pytest.approx(0.1, abs=1e-6) and auc["ci_low"] > 0
    assert {b["device"] for b in summary["bench"]} == {GPU}  # lines of other machines are not this run's


def test_page_says_what_did_not_run_and_reads_the_trends(tmp_path):
    flat = _run_dir(tmp_path / "a", slope=0.0, calls=(("01", 0, 5), ("03", 124, 500)))
    text = gpu_run.page(gpu_run.summarise([flat]), "bash bench/gpu_book.sh gpu")
    assert "cut at the time budget" in text and "03 contamination" in text.split("Not finished")[1]
    assert "probe AUC (last token) shows no trend" in text
    assert GPU in text and "23.0%" in text
    assert "Mean over the 4 heads" in text  # the fake run's probes have 4 heads


def test_import_relabels_chapters_and_adds_a_part(tmp_path):
    run = _run_dir(tmp_path / "a")
    book_dir = tmp_path / "book"
    gpu_run.import_run([[run]], book_dir, ["bash bench/gpu_book.sh gpu"])
    nb = nbformat.read(book_dir / "chapters" / "gpu" / "03_contamination.ipynb", as_version=4)
    assert nb.cells[0].source.startswith("# The sweep (gpu level)")
    assert "`gpu-fig-training`" in nb.cells[0].source and ":name: gpu-fig-training" in nb.cells[1].source
    assert json.loads((book_dir / "gpu_level.json").read_text())[0]["command"] == "bash bench/gpu_book.sh gpu"
    toc = builder.write_toc([], book_dir).read_text()
    assert "The gpu level" in toc and "chapters/gpu/03_contamination" in toc


def _evaluations(root, removed_per_unit_fraction):
    """Chapter 5's results for one seed: ToxiGen toxicity 0.3 at alpha 0; alpha 8 removes 0.05 plus
    `removed_per_unit_fraction` x the fraction; each alpha costs 0.01 nats per unit."""
    points = [(f, a, b) for f in (0.0, 0.1, 0.2) for a in (0.0, 8.0) for b in ("toxigen", "ce")]
    for i, (f, a, bench) in enumerate(points):
        tox = 0.3 - (0.05 + removed_per_unit_fraction * f) * (a > 0)
        result = {"benchmark": bench, "toxic_fraction": f, "seed": 0, "alpha": a, "k": 8, "direction": "mass_mean",
                  "instruction": "", "all": {"mean_toxicity": tox, "mean_toxicity_ci": [tox - 0.01, tox + 0.01],
                                             "toxicity_probability": tox},
                  "by_kind": {}, "clean": {"ce": 5.5 + 0.01 * a, "ce_base": 5.5, "kl": 0.0},
                  "c4": {"ce": 6.0, "ce_base": 6.0}}
        folder = root / "cache" / "evaluate" / f"e{i}"
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(result))


def test_page_reads_chapter_5_s_sweep_even_when_the_chapter_was_cut(tmp_path):
    run = _run_dir(tmp_path / "a")
    _evaluations(run, removed_per_unit_fraction=0.5)
    summary = gpu_run.summarise([run])
    assert len(summary["iti"]) == 6  # a toxigen and a ce result make one point
    text = gpu_run.page(summary, "cmd")
    assert "| 20% | 30.0 (+0.00) | 15.0 (+0.08) |" in text  # 0.3 - (0.05 + 0.5 x 0.2) = 0.15, cost 8 x 0.01
    assert "+5.00 (95 % interval" in text and "removes more from models trained on more toxic data" in text
    assert "cost changes by +0.000 (95 %" in text and "leaves ranges 15.0-25.0 across fractions, from 30.0-30.0" in text
    flat = _run_dir(tmp_path / "b")
    _evaluations(flat, removed_per_unit_fraction=0.0)
    assert "no trend with the toxic fraction" in gpu_run.page(gpu_run.summarise([flat]), "cmd")


def test_several_runs_make_one_page_with_a_section_each(tmp_path):
    first, second = _run_dir(tmp_path / "a"), _run_dir(tmp_path / "b", calls=(("05", 124, 300),))
    book_dir = tmp_path / "book"
    summaries = gpu_run.import_run([[first], [second]], book_dir, ["first command", "second command"])
    text = (book_dir / "gpu_level.md").read_text()
    assert len(summaries) == 2 and text.count("\n## Run ") == 2 and "\n### The models" in text
    assert text.index("first command") < text.index("## Run 2") < text.index("second command")
    assert "| 1 | 05 intervention | cut at the time budget | 300 |" in text
    assert (book_dir / "chapters" / "gpu" / "03_contamination.ipynb").is_file()  # the first run's chapter stays
    with pytest.raises(ToxlabError, match="one --command per run"):
        gpu_run.import_run([[first], [second]], book_dir, ["only one"])


def test_the_page_says_which_data_design_each_run_trained_on(tmp_path):
    """Issue 26: until a GPU run of the web-text design replaces them, the page says its numbers are the first
    design's; a run imported before runs recorded their design (the two H100 runs) was the first design."""
    web = gpu_run.summarise([_run_dir(tmp_path / "a")])
    first = gpu_run.summarise([_run_dir(tmp_path / "b", data=FIRST_DATA)])
    assert (web["design"], first["design"]) == ("web-text", "first")
    keyed = gpu_run.summarise([_run_dir(tmp_path / "c", data={})])  # the cache's config leaves the defaults out
    assert keyed["design"] == "first"
    assert "web-text design: news, blogs and Reddit" in gpu_run.page(web, "cmd")
    assert "not their levels" not in gpu_run.page(web, "cmd")
    unrecorded = {k: v for k, v in first.items() if k != "design"}
    for summary in (first, unrecorded):
        text = gpu_run.page(summary, "cmd")
        assert "Data: **the first design: Wikinews only" in text and "not their levels" in text
    both = gpu_run.pages([{**unrecorded, "command": "old"}, {**web, "command": "new"}])
    assert "Data design by run: run 1: the first design; run 2: the web-text design." in both


def test_import_refuses_what_is_not_a_gpu_run(tmp_path):
    with pytest.raises(ToxlabError, match="machine.txt"):
        gpu_run.summarise([tmp_path])
    run = _run_dir(tmp_path / "a")
    nb_path = run / "book" / "chapters" / "03_contamination.ipynb"
    nb = nbformat.read(nb_path, as_version=4)
    nb.metadata["toxlab"]["level"] = "cpu"
    nbformat.write(nb, nb_path)
    with pytest.raises(ToxlabError, match="not executed at the gpu level"):
        gpu_run.import_chapters(run, tmp_path / "out")


def test_progress_bars_are_read_from_the_executed_chapters(tmp_path):
    """Two models' bars in one stream (carriage returns, as tqdm writes them), one cut before its end."""
    stream = ("pretrain: preset=gpu toxic_fraction=0.00 seed=0\n"
              "\rpretrain:   0%|          | 0/500 [00:00<?, ?step/s]"
              "\rpretrain:   0%|          | 1/500 [00:20<2:59:25, 22.11s/step]"
              "\rpretrain:  50%|█████     | 250/500 [00:25<00:05, 50.0step/s, loss=6.0]"
              "\rpretrain: 100%|██████████| 500/500 [00:30<00:00, 50.0step/s, loss=5.5]\n"
              "\rpretrain:   0%|          | 0/400 [00:00<?, ?step/s]"
              "\rpretrain:   1%|          | 4/400 [00:02<01:40, 4.0step/s]"
              "\rpretrain: 100%|██████████| 400/400 [1:00:10<00:00, 0.1step/s]\n"
              "\rpretrain:   0%|          | 0/300 [00:00<?, ?step/s]"
              "\rpretrain:  10%|█         | 30/300 [00:03<00:27, 10.0step/s]")
    cell = nbformat.v4.new_code_cell("train()", outputs=[nbformat.v4.new_output("stream", name="stderr", text=stream)])
    path = tmp_path / "03_contamination.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert gpu_run.progress_bars(path) == [
        {"steps": 500, "first_report": 1, "first_report_s": 20, "end_s": 30},
        {"steps": 400, "first_report": 4, "first_report_s": 2, "end_s": 3610}]


def test_page_reads_the_loop_s_pace_against_the_benchmark(tmp_path):
    run = _run_dir(tmp_path / "a")
    bar = ("\rpretrain:   0%|          | 0/500 [00:00<?, ?step/s]\rpretrain:   0%|          | 1/500 [00:04<, x]"
           "\rpretrain: 100%|██████████| 500/500 [00:14<00:00, 50.0step/s]")
    cell = nbformat.v4.new_code_cell("train()", outputs=[nbformat.v4.new_output("stream", name="stderr", text=bar)])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"toxlab": {"level": "gpu"}}),
                   run / "book" / "chapters" / "01_background.ipynb")
    text = gpu_run.page(gpu_run.summarise([run]), "bash bench/gpu_book.sh gpu")
    # 500 steps, first report at step 1 after 4 s, the other 499 in 10 s; the benchmark's 6e5 tokens/s at 6,000
    # tokens a step (3e6 tokens in 500 steps) is 100 steps a second
    assert "after 4 s" in text and "ran 50 steps a second" in text and "against 100 steps a second" in text
    assert "torch.compile compiling" in text
    assert "500,000 against 600,000 tokens/s, +20.0 %" in text and "pays after 1,300 steps, against 488" in text
    assert "trained before toxlab timed the device's work" in text  # these models' metrics have no first_step_s
    for metrics in (run / "cache" / "pretrain").glob("*/metrics.json"):
        metrics.write_text(json.dumps(json.loads(metrics.read_text()) | {"first_step_s": 3.0}))
    assert "trained before" not in gpu_run.page(gpu_run.summarise([run]), "bash bench/gpu_book.sh gpu")


def test_page_lists_the_models_in_the_order_they_were_saved(tmp_path):
    import os
    run = _run_dir(tmp_path / "a")
    for i, metrics in enumerate(sorted((run / "cache" / "pretrain").glob("*/metrics.json"))):
        os.utime(metrics, (1_000_000 - 10 * i, 1_000_000 - 10 * i))  # saved in reverse: the 20 % seed 1 model first
    text = gpu_run.page(gpu_run.summarise([run]), "bash bench/gpu_book.sh gpu")
    rows = text.split("| # | saved at (s) |")[1].split("\n\n")[0].splitlines()[2:]
    assert rows[0].startswith("| 1 | 0 | 20% | 1 |") and rows[-1].startswith("| 6 | 50 | 0% | 0 |")
    assert "launch each step" in text  # the fake models have no first_step_s
