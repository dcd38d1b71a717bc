"""Where each family of Hugging Face causal LM keeps what toxlab hooks: the decoder layers, each layer's
attention output projection (whose input is every head's output, the paper's probe and ITI site) and the
head count (paper Sections 4 and 5, on any model).

One row per family, `ADAPTERS`; a model is matched by its config's `model_type`. The names follow the
modules as transformers defines them (the same places honest_llama hooks for Llama, TransformerLens calls
`blocks.{l}.attn.hook_z` and nnsight reaches as `model.transformer.h[l].attn.c_proj.input`):

| family                     | model_type                            | layers            | attention output   |
|----------------------------|---------------------------------------|-------------------|--------------------|
| OLMo / OLMo-2              | olmo, olmo2                           | `model.layers`    | `self_attn.o_proj` |
| Llama / Mistral / Qwen     | llama, mistral, qwen2, qwen3          | `model.layers`    | `self_attn.o_proj` |
| GPT-2                      | gpt2                                  | `transformer.h`   | `attn.c_proj`      |
| GPT-NeoX / Pythia          | gpt_neox                              | `gpt_neox.layers` | `attention.dense`  |

In every family the projection's input is `[batch, seq, n_heads * head_dim]`, head-major (head h owns
columns h * head_dim to (h + 1) * head_dim). Its weight is an `nn.Linear` ([d_model, n_heads * head_dim])
except GPT-2's `Conv1D`, which stores the transpose ([n_heads * head_dim, d_model]): `projection_weight`
gives the `nn.Linear` orientation for both. OLMo, Llama, Mistral and Qwen projections have no bias; GPT-2
and GPT-NeoX have one (`toxlab.interp.hooks.shifted` adds a bias for the duration of its block, or adds to it).

To add a family: one `Adapter` row naming its `model_type`s, the dotted path from the causal LM to its
`ModuleList` of decoder layers, and from a layer to the attention output projection; then add a tiny config
of it to tests/test_adapters.py, which checks the site against the model's own computation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from toxlab.core.errors import ConfigError


@dataclass(frozen=True)
class Adapter:
    """One family's layout. layers: dotted path from the causal LM to its decoder layers (a ModuleList);
    attn_out: dotted path from one decoder layer to its attention output projection; heads: the config
    attribute holding the number of attention (query) heads; transposed: the projection stores its weight
    as [in, out] (GPT-2's Conv1D) rather than nn.Linear's [out, in]."""

    family: str
    model_types: tuple[str, ...]
    layers: str
    attn_out: str
    heads: str = "num_attention_heads"
    transposed: bool = False


ADAPTERS: tuple[Adapter, ...] = (
    Adapter("OLMo / OLMo-2", ("olmo", "olmo2"), "model.layers", "self_attn.o_proj"),
    Adapter("Llama / Mistral / Qwen", ("llama", "mistral", "qwen2", "qwen3"), "model.layers", "self_attn.o_proj"),
    Adapter("GPT-2", ("gpt2",), "transformer.h", "attn.c_proj", heads="n_head", transposed=True),
    Adapter("GPT-NeoX / Pythia", ("gpt_neox",), "gpt_neox.layers", "attention.dense"),
)


def supported() -> str:
    """The families and their model types, in one line (for messages)."""
    return "; ".join(f"{a.family} ({', '.join(a.model_types)})" for a in ADAPTERS)


def adapter_for(model) -> Adapter:
    """The row for `model` (a causal LM, or its config), by `config.model_type`; a ConfigError naming the
    supported families and how to add one for any other."""
    config = getattr(model, "config", model)
    model_type = getattr(config, "model_type", None)
    for adapter in ADAPTERS:
        if model_type in adapter.model_types:
            return adapter
    raise ConfigError(f"model type {model_type!r} has no toxlab adapter; supported: {supported()}; to add one, "
                      "write an Adapter row in toxlab/model/adapters.py naming its decoder layers, attention output "
                      "projection and head count")


def _get(root: torch.nn.Module, path: str) -> torch.nn.Module:
    module = root
    for name in path.split("."):
        module = getattr(module, name)
    return module


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder layers of `model`, in order."""
    return _get(model, adapter_for(model).layers)


def attention_output(model, layer: int) -> torch.nn.Module:
    """Layer `layer`'s attention output projection: its input is every head's output, [B, T, H * Dh]."""
    adapter = adapter_for(model)
    return _get(_get(model, adapter.layers)[layer], adapter.attn_out)


def head_count(model) -> int:
    """The number of attention (query) heads per layer."""
    return int(getattr(model.config, adapter_for(model).heads))


def projection_weight(model, module: torch.nn.Module) -> torch.Tensor:
    """The attention output projection's weight as nn.Linear holds it, [d_model, H * Dh] (a view)."""
    weight = module.weight
    return weight.T if adapter_for(model).transposed else weight
