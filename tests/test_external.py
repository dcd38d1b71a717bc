"""`--model DIR`: the probes, ITI, LEACE and the benchmarks of toxlab.pipeline.external on a model toxlab did not
train (a tiny random GPT-2 saved with save_pretrained, with its own tokenizer), on the fixture data. Results are
keyed by the content of the model's files: a copy elsewhere reuses them, other weights in the same folder do not;
a model the book trained gets the book's held-out blocks and the book's numbers; the CLI prints the path last."""

import json
import shutil

import numpy as np
import pytest

from tests.fixtures.tiny_families import tiny_family_model
from tests.test_evaluate_stage import LengthJudge
from toxlab.cli import main
from toxlab.evaluation.evaluate import eval_preset
from toxlab.interp.erasure import Erasure
from toxlab.interp.intervene import ITI
from toxlab.pipeline import evaluation, external, mixtures, pretraining, probing


def _save(folder, tok, seed=0, model_type="gpt2"):
    tiny_family_model(model_type, tok, seed).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def small_eval():
    return eval_preset("smoke", {"max_new_tokens": 4, "rtp_prompts": 3, "rtp_samples": 2, "ce_blocks": 2})


def test_results_are_keyed_by_the_content_of_the_model_files(env, tmp_path, tok):
    model = external.resolve_model(_save(tmp_path / "gpt2", tok))
    assert model.model_type == "gpt2" and set(model.weights) == {"model.safetensors"}
    assert "tokenizer.json" in model.files and "config.json" in model.files
    entry = external.probe(model, progress=False)
    summary = entry.json("summary.json")
    assert np.asarray(summary["head_val_auc"]).shape == (2, 4) and summary["model_type"] == "gpt2"
    assert summary["weights_sha256"] == model.weights

    copy = external.resolve_model(shutil.copytree(tmp_path / "gpt2", tmp_path / "elsewhere"))
    assert copy.identity == model.identity and external.probe(copy, progress=False).key == entry.key
    retrained = external.resolve_model(_save(tmp_path / "gpt2", tok, seed=1))  # new weights, same folder
    assert retrained.weights != model.weights and retrained.files == model.files
    assert external.probe(retrained, progress=False).key != entry.key


def test_iti_leace_and_the_benchmarks_on_any_model(env, tmp_path, tok, small_eval, tiny):
    model = external.resolve_model(_save(tmp_path / "neox", tok, model_type="gpt_neox"))
    iti = external.fitted_iti(model, k=3, alpha=4.0, progress=False)
    assert isinstance(iti, ITI) and iti.k == 3 and iti.shape == (2, 4, 8)
    erasure = external.fitted_erasure(model, k=3, progress=False)
    assert isinstance(erasure, Erasure) and erasure.heads == iti.heads

    judge = LengthJudge()
    entry = external.evaluate(model, "toxigen", alpha=4.0, k=3, level="smoke", eval_config=small_eval, judge=judge,
                              progress=False)
    result = entry.json("result.json")
    assert result["model_type"] == "gpt_neox" and result["judge"] == {"name": "length", "version": "test"}
    assert result["heads"] == [list(h) for h in iti.heads] and result["all"]["prompts"] == 3
    assert ITI.load(entry.file("iti")).heads == iti.heads
    assert external.evaluate(model, "toxigen", alpha=4.0, k=3, level="smoke", eval_config=small_eval, judge=judge,
                             progress=False).path == entry.path  # cached

    ce = {alpha: external.evaluate(model, "ce", alpha=alpha, k=3, level="smoke", eval_config=small_eval,
                                   data_config=tiny.data, progress=False).json("result.json") for alpha in (0.0, 40.0)}
    assert ce[0.0]["clean"]["kl"] == 0.0 and ce[0.0]["clean"]["ce"] == ce[0.0]["clean"]["ce_base"]
    assert ce[40.0]["clean"]["kl"] > 0 and ce[40.0]["clean"]["ce_base"] == ce[0.0]["clean"]["ce_base"]
    leace = external.evaluate(model, "ce", alpha=1.0, k=3, direction="leace", level="smoke", eval_config=small_eval,
                              data_config=tiny.data, progress=False)
    assert Erasure.load(leace.file("iti")).heads == iti.heads and leace.json("result.json")["clean"]["kl"] > 0


def test_a_model_the_book_trained_gets_the_book_s_held_out_blocks_and_probes(env, tiny):
    config = tiny.with_fraction(0.1)
    model_dir = pretraining.pretrain(config, 0, progress=False).file("model")
    model = external.resolve_model(model_dir)
    sets = external.capability_sets(model.tokenizer(), config.data, config.data.seq_len)
    mixture = mixtures.mixture(config)
    assert np.array_equal(sets["clean"], np.load(mixture.file("val.npy")).astype(np.int64))
    assert np.array_equal(sets["c4"], np.load(mixture.file("c4.npy")).astype(np.int64))
    eval_config = eval_preset("smoke", {"ce_blocks": 10_000})
    assert np.array_equal(sets["webtext"], evaluation.heldout_blocks(mixture, eval_config, config)["webtext"])
    book = probing.probe(config, 0, progress=False).json("summary.json")
    ours = external.probe(model, progress=False).json("summary.json")
    assert ours["head_val_auc"] == book["head_val_auc"] and ours["top_heads"] == book["top_heads"]


def test_the_cli_probes_a_model_folder_and_prints_the_path_last(env, tmp_path, tok, capsys):
    folder = _save(tmp_path / "llama", tok, model_type="llama")
    assert main(["probe", "--preset", "smoke", "--model", str(folder), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    shown = json.loads(lines[-2])
    assert shown["model"] == str(folder) and shown["model_type"] == "llama" and 0 <= shown["head_auc_max"] <= 1
    assert lines[-1].endswith("summary.json") and "model_probe" in lines[-1]
