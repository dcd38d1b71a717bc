"""Named activation sites and the hooks that read or edit them (paper Sections 4 and 5; ITI's site).

Two kinds of site, named after the tensor they sit on:
- `blocks.{l}.attn.head_out`: every head's output of layer l *before* the attention output projection (`o_proj`
  in OLMo and Llama, `c_proj` in GPT-2, `dense` in GPT-NeoX: `toxlab.model.adapters` says where each family keeps it),
  `[batch, seq, n_heads * head_dim]` viewed as `[batch, seq, n_heads, head_dim]`: where the paper probes
  and where ITI adds its shift;
- `blocks.{l}.resid_post`: the residual stream after decoder layer l, `[batch, seq, d_model]`.

Hooks exist only inside the `hooked` context manager (plain torch hooks; baukit is not on PyPI), and are
removed on the way out even when the body raises. A constant shift of a layer's head outputs needs no hook:
`o_proj(x + s) = o_proj(x) + W_o s`, so `shifted` adds `W_o s` to that layer's `o_proj` as a bias for the
duration of its block (ITI's own implementation does the same): no extra work per forward pass. A projection
without a bias (OLMo, Llama, Mistral, Qwen) gets one for the block and loses it after; one with a bias (GPT-2,
GPT-NeoX) has the shift added to it and gets its own back.
`shifted_from` shifts only from one position on (ITI's reference positions during generation), as a hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from toxlab.model import adapters

HEAD_OUT = "blocks.{}.attn.head_out"
RESID_POST = "blocks.{}.resid_post"


def decoder_layers(model) -> torch.nn.ModuleList:
    return adapters.decoder_layers(model)


def head_count(model) -> int:
    return adapters.head_count(model)


def site_names(model, kind: str = "head_out") -> list[str]:
    template = {"head_out": HEAD_OUT, "resid_post": RESID_POST}[kind]
    return [template.format(layer) for layer in range(len(decoder_layers(model)))]


def _module_and_kind(model, site: str):
    parts = site.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"unknown site {site!r}; use {HEAD_OUT.format('L')} or {RESID_POST.format('L')}")
    layer = int(parts[1])
    if site.endswith("attn.head_out"):
        return adapters.attention_output(model, layer), "pre"
    if site.endswith("resid_post"):
        return decoder_layers(model)[layer], "post"
    raise ValueError(f"unknown site {site!r}")


@contextmanager
def hooked(model, functions: dict[str, Callable[[torch.Tensor], torch.Tensor | None]]) -> Iterator[None]:
    """Run `functions[site](tensor)` on each site's tensor during forward passes inside the block.

    A function that returns a tensor replaces the site's tensor (an edit); one that returns None only
    reads it. Head-out tensors are passed as `[batch, seq, n_heads, head_dim]` views.
    """
    handles = []
    try:
        for site, function in functions.items():
            module, kind = _module_and_kind(model, site)
            if kind == "pre":
                n_heads = head_count(model)

                def pre_hook(mod, args, function=function, n_heads=n_heads):
                    x = args[0]  # [B, T, H * Dh]
                    heads = x.view(*x.shape[:-1], n_heads, x.shape[-1] // n_heads)  # [B, T, H, Dh]
                    out = function(heads)
                    if out is None:
                        return None
                    return (out.reshape(x.shape), *args[1:])

                handles.append(module.register_forward_pre_hook(pre_hook))
            else:
                def post_hook(mod, args, output, function=function):
                    hidden = output[0] if isinstance(output, tuple) else output  # [B, T, d_model]
                    out = function(hidden)
                    if out is None:
                        return None
                    return (out, *output[1:]) if isinstance(output, tuple) else out

                handles.append(module.register_forward_hook(post_hook))
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def shifted(model, shifts: dict[int, torch.Tensor]) -> Iterator[None]:
    """Inside the block, layer l's head outputs are shifted by `shifts[l]` ([n_heads, head_dim]) at every
    forward pass, folded into `o_proj` as the bias `W_o s` (added to any bias it has); restored on the way out
    even when the body raises. The same outputs as a `hooked` edit adding `s`, up to rounding."""
    saved = []
    try:
        for layer, shift in shifts.items():
            o_proj = adapters.attention_output(model, layer)
            weight = adapters.projection_weight(model, o_proj)  # [d_model, n_heads * head_dim]
            bias = weight.detach().float() @ shift.reshape(-1).to(weight.device, torch.float32)  # [d_model]
            saved.append((o_proj, o_proj.bias))
            if o_proj.bias is not None:
                bias = bias + o_proj.bias.detach().float()
            o_proj.bias = torch.nn.Parameter(bias.to(weight.dtype), requires_grad=False)
        yield
    finally:
        for o_proj, bias in reversed(saved):
            o_proj.bias = bias


@contextmanager
def shifted_from(model, shifts: dict[int, torch.Tensor], start: int) -> Iterator[None]:
    """Inside the block, layer l's head outputs are shifted by `shifts[l]` ([n_heads, head_dim]) only at
    sequence positions >= `start` (ITI's reference during generation: `start` is the last prompt position,
    the same for every row of a left-padded batch). A pass over the prompt (or, without the KV cache, over
    prompt and generated tokens) is shifted from `start` on; a one-token pass is a generation step after
    the prompt and is shifted whole, so generations with and without the KV cache agree. A hook on
    `o_proj`'s input: unlike `shifted`, a bias cannot tell positions apart."""
    def edit(shift):
        def apply(heads):  # [B, T, H, Dh]
            if heads.shape[1] == 1:
                return heads + shift.to(heads.dtype)
            out = heads.clone()
            out[:, start:] += shift.to(heads.dtype)
            return out
        return apply

    with hooked(model, {HEAD_OUT.format(layer): edit(shift) for layer, shift in shifts.items()}):
        yield


def active_hook_count(model) -> int:
    """Hooks currently registered on any module of `model` (0 outside `hooked`)."""
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


POOLS = ("last", "mean")


def _pool(x: torch.Tensor, mask: torch.Tensor, pool: str) -> torch.Tensor:
    """x [B, T, ...], mask [B, T] -> [B, ...] at the last real token or averaged over real tokens."""
    if pool == "last":
        last = mask.sum(1) - 1  # right padding: the last real token
        return x[torch.arange(x.shape[0], device=x.device), last]
    if pool == "mean":
        weights = mask.to(x.dtype).view(*mask.shape, *([1] * (x.dim() - 2)))
        return (x * weights).sum(1) / weights.sum(1)
    raise ValueError(f"pool={pool!r} must be 'last' or 'mean'")


def capture(model, tokenizer, texts: list[str], kinds: tuple[str, ...] = ("head_out",), pool: str = "last",
            batch_size: int = 64, max_length: int = 128, progress=None) -> dict[str, torch.Tensor]:
    """Activations of every layer for `texts`, pooled over tokens, on the CPU in float32, one forward pass
    per batch for all `kinds`: head_out -> [N, L, H, Dh]; resid_post -> [N, L, d_model].

    Texts are truncated to `max_length` tokens and batched by length (right padding)."""
    return capture_pools(model, tokenizer, texts, kinds, (pool,), batch_size, max_length, progress)[pool]


@torch.no_grad()
def capture_pools(model, tokenizer, texts: list[str], kinds: tuple[str, ...] = ("head_out",),
                  pools: tuple[str, ...] = ("last", "mean"), batch_size: int = 64, max_length: int = 128,
                  progress=None) -> dict[str, dict[str, torch.Tensor]]:
    """`capture` for several poolings from the same forward passes: {pool: {kind: tensor}}, each exactly
    what `capture` with that pool returns (the forward pass is most of the cost)."""
    unknown = [pool for pool in pools if pool not in POOLS]
    if unknown:
        raise ValueError(f"pools {unknown} unknown: use {' or '.join(map(repr, POOLS))}")
    model.eval()
    device = next(model.parameters()).device
    sites = {kind: site_names(model, kind) for kind in kinds}
    body = model.base_model  # the decoder without the LM head, whose logits are not needed here
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths per batch: less padding
    chunks: dict[tuple[str, str], list[torch.Tensor]] = {(pool, kind): [] for pool in pools for kind in kinds}
    starts = range(0, len(texts), batch_size)
    for start in (progress(starts) if progress else starts):
        idx = order[start:start + batch_size]
        batch = tokenizer([texts[i] for i in idx], return_tensors="pt", padding=True, padding_side="right",
                          truncation=True, max_length=max_length, add_special_tokens=False).to(device)
        mask = batch["attention_mask"]  # [B, T]
        taken: dict[tuple[str, str], torch.Tensor] = {}

        def reader(name, taken=taken, mask=mask):
            def read(x):
                for pool in pools:
                    taken[pool, name] = _pool(x, mask, pool).float().cpu()
            return read

        with hooked(model, {site: reader(site) for names in sites.values() for site in names}):
            body(input_ids=batch["input_ids"], attention_mask=mask)
        for (pool, kind), parts in chunks.items():
            parts.append(torch.stack([taken[pool, s] for s in sites[kind]], dim=1))  # [B, L, ...]
    inverse = torch.from_numpy(np.argsort(order))  # back to the input order
    out: dict[str, dict[str, torch.Tensor]] = {pool: {} for pool in pools}
    for (pool, kind), parts in chunks.items():
        out[pool][kind] = torch.cat(parts)[inverse]
    return out
