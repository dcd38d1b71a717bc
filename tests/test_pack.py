"""The packed data folder and the compact encoder the gpu level's one-script run carries (toxlab.data.pack)."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from toxlab.core.config import get_preset
from toxlab.core.errors import DataError, JudgeUnavailableError
from toxlab.data import corpora, pack
from toxlab.data.tokenizer import train_tokenizer
from toxlab.judges import encoder


@pytest.fixture
def packed(data_dir, tmp_path, tiny):
    summary = pack.pack_data(tmp_path / "packed", tiny, root=data_dir, headroom=1.0)
    return tmp_path / "packed", summary


def test_packed_folder_reads_like_the_original(data_dir, packed, tiny):
    root, _ = packed
    carried = (*corpora.files_read(tiny.data), *pack.EVALUATION_FILES)
    corpora.check_layout(carried, root)  # every file the level reads is found, compressed or not
    for name in carried:
        assert corpora.resolve(name, root).suffix == ".gz"
    assert not corpora.resolve("jigsaw", root).exists()  # nothing the level does not read
    for name in ("c4", "pol", "civil", "stormfront"):  # carried whole
        assert corpora.read_documents(name, tiny.data, root) == corpora.read_documents(name, tiny.data, data_dir)
    assert corpora.davidson_tweets(root) == corpora.davidson_tweets(data_dir)
    assert corpora.toxigen_probe_set(root=root).texts == corpora.toxigen_probe_set(root=data_dir).texts
    assert corpora.rtp_prompts("challenging", 5, 0, root) == corpora.rtp_prompts("challenging", 5, 0, data_dir)
    assert corpora.toxigen_prompts(1, 0, root) == corpora.toxigen_prompts(1, 0, data_dir)
    assert not list(root.parent.glob("*.partial"))


def test_cuts_keep_a_prefix_with_enough_text(data_dir, packed, tiny):
    root, summary = packed
    for name in ("blogs", "wikinews"):  # one document a row, so the cut keeps a prefix of the documents
        full = corpora.read_documents(name, tiny.data, data_dir)
        cut = corpora.read_documents(name, tiny.data, root)
        assert cut == full[:len(cut)]  # the first rows in file order, unchanged
        need = pack.chars_needed(tiny, name, data_dir)
        assert sum(len(t) for _, t in cut) >= min(need, sum(len(t) for _, t in full))
    assert summary["files"]["blogs"]["kept_documents"] <= summary["files"]["blogs"]["documents"]


def test_a_packed_web_text_level_builds_its_largest_mixture(data_dir, packed, tiny):
    root, summary = packed
    assert {"blogs", "reddit", "pol_2025", "wikinews"} <= set(summary["files"])
    config = tiny.with_fraction(tiny.data.max_fraction)
    tok = train_tokenizer(corpora.tokenizer_corpus(config.data, config.tokenizer.train_chars, root), config.tokenizer)
    mix = corpora.build_mixture(config.data, tok, root)  # raises if a cut left a source short
    assert abs(mix.stats["realised_fraction"] - config.data.max_fraction) < 0.01
    for name, _ in config.data.clean_recipe:
        if "kept_documents" in summary["files"][name]:
            kept = corpora.clean_split(name, config.data, root)
            assert sum(len(t) for _, t in kept.train) >= config.data.clean_tokens * dict(config.data.clean_recipe)[name]


def test_packing_is_deterministic_and_refuses_an_existing_folder(data_dir, packed, tmp_path, tiny):
    root, _ = packed
    again = tmp_path / "again"
    pack.pack_data(again, tiny, root=data_dir, headroom=1.0)
    for name in (*corpora.files_read(tiny.data), *pack.EVALUATION_FILES):
        assert corpora.resolve(name, again).read_bytes() == corpora.resolve(name, root).read_bytes()
    with pytest.raises(DataError, match="already exists"):
        pack.pack_data(root, tiny, root=data_dir)


def test_gpu_cut_covers_its_largest_mixture():
    gpu = get_preset("gpu")
    share = dict(gpu.data.toxic_recipe)["pol_2025"]
    needed_tokens = corpora.recipe_targets(gpu.data, gpu.data.max_fraction)["pol_2025"]
    assert needed_tokens == pytest.approx(share * corpora.toxic_token_target(gpu.data, 0.25), abs=1)
    assert pack.chars_needed(gpu, "pol_2025") >= needed_tokens * pack.CHARS_PER_TOKEN


@pytest.fixture
def tiny_encoder(tmp_path):
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    config = BertConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)
    model = BertModel(config).eval()
    model.save_pretrained(tmp_path / "encoder")
    return tmp_path / "encoder", model


def test_packed_encoder_restores_the_model_to_tolerance(tiny_encoder, tmp_path):
    source, model = tiny_encoder
    summary = encoder.pack_encoder(tmp_path / "packed_encoder", source)
    restored = encoder.load_packed_encoder(tmp_path / "packed_encoder")
    original, back = model.state_dict(), restored.state_dict()
    assert set(back) == set(original) and summary["tensors"] == len(original) + 1  # + the embedding scales
    key = "embeddings.word_embeddings.weight"
    step = original[key].abs().amax(dim=1, keepdim=True) / 127  # one int8 step per row
    assert bool(((back[key] - original[key]).abs() <= step / 2 + 1e-7).all())
    for name, value in original.items():
        if name != key and value.is_floating_point():
            assert torch.equal(back[name], value.half().float()), name
    ids = torch.randint(0, 300, (3, 12))
    with torch.no_grad():
        a, b = model(input_ids=ids).last_hidden_state, restored(input_ids=ids).last_hidden_state
    assert float((a - b).abs().max()) < 0.05 * float(a.abs().max())
    with pytest.raises(DataError, match="already exists"):
        encoder.pack_encoder(tmp_path / "packed_encoder", source)


def test_encoder_env_must_hold_a_packed_encoder(tmp_path, monkeypatch):
    from toxlab.judges import encoder
    monkeypatch.setenv("TOXLAB_ENCODER", str(tmp_path))
    with pytest.raises(JudgeUnavailableError, match="toxlab data pack"):
        encoder.encoder_path()


def test_gzip_members_carry_no_timestamp(packed):
    root, _ = packed
    with open(corpora.resolve("davidson", root), "rb") as handle:
        header = handle.read(10)
    assert header[4:8] == b"\x00\x00\x00\x00"  # mtime 0: the same input packs to the same bytes
    with gzip.open(corpora.resolve("davidson", root), "rt") as handle:
        assert handle.readline()
    assert np.isfinite(pack.CHARS_PER_TOKEN)
