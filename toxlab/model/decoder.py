"""The OLMo decoder from transformers, randomly initialised from a `ModelConfig` (paper Section 3).

Olmo-1B's choices are kept: SwiGLU MLP, rotary positions, no biases, non-parametric LayerNorm, tied input
and output embeddings. Attention uses PyTorch's fused scaled-dot-product kernel.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Olmo2Config, Olmo2ForCausalLM, OlmoConfig, OlmoForCausalLM, PreTrainedModel

from toxlab.core.config import ModelConfig
from toxlab.core.distributed import local_rank, world_size


def hf_config(config: ModelConfig, vocab_size: int, max_seq_len: int, eos_id: int, pad_id: int):
    cls = OlmoConfig if config.arch == "olmo" else Olmo2Config
    return cls(vocab_size=vocab_size, hidden_size=config.d_model, intermediate_size=config.d_mlp,
               num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
               num_key_value_heads=config.n_heads, max_position_embeddings=max_seq_len,
               rope_theta=config.rope_theta, attention_bias=False, attention_dropout=0.0,
               initializer_range=config.init_std, tie_word_embeddings=True, use_cache=True,
               bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id)


def build_model(config: ModelConfig, vocab_size: int, max_seq_len: int, eos_id: int, pad_id: int,
                seed: int) -> PreTrainedModel:
    """A freshly initialised OLMo; the weights depend only on the config and `seed`."""
    cls = OlmoForCausalLM if config.arch == "olmo" else Olmo2ForCausalLM
    hf = hf_config(config, vocab_size, max_seq_len, eos_id, pad_id)
    hf._attn_implementation = "sdpa"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = cls(hf)
    return model


def count_params(model: torch.nn.Module) -> dict[str, int]:
    """Total and non-embedding parameter counts (embeddings are tied, so counted once)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    return {"total": total, "non_embedding": total - embedding, "embedding": embedding}


def train_flops_per_token(config: ModelConfig, vocab_size: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 x (non-embedding matmul params + the tied output projection) plus
    attention scores and values (6 x 2 x layers x seq x d_model / 2 for causal masking: counted in full,
    as PaLM's MFU convention does)."""
    per_layer = 4 * config.d_model ** 2 + 3 * config.d_model * config.d_mlp
    matmul_params = config.n_layers * per_layer + vocab_size * config.d_model
    attention = 12 * config.n_layers * seq_len * config.d_model
    return 6.0 * matmul_params + attention


def pick_device() -> torch.device:
    """The GPU when present (under a launcher, this process's own GPU), the CPU otherwise."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank() % torch.cuda.device_count() if world_size() > 1 else 0)


def to_device(blocks: np.ndarray, device: torch.device | str) -> torch.Tensor:
    """Token blocks as int64 on `device`. To a GPU through pinned memory, so the copy is asynchronous: a copy
    from ordinary (pageable) memory makes the CPU wait until the GPU has finished the work queued before it,
    which would serialise every training step's launch with the previous step's compute."""
    x = torch.from_numpy(np.ascontiguousarray(blocks, dtype=np.int64))
    if torch.device(device).type == "cuda":
        x = x.pin_memory()  # pinned buffers come from a cache and are not reused before the copy is done
    return x.to(device, non_blocking=True)
