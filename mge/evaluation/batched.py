"""Predictions of many parameter sets of one architecture, batched with ``torch.func``.

A pool's members share an architecture and differ only in their parameters, so instead of
loading N modules one after another, the parameters are stacked on a leading axis and the
forward pass is vectorised with ``vmap(functional_call)``: convolutions become grouped
convolutions and linear layers batched matmuls.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap


def stacked_size(params: Mapping[str, Tensor]) -> int:
    """Number of models in a stacked parameter dict; every tensor must agree."""
    sizes = {t.shape[0] for t in params.values()}
    if len(sizes) != 1:
        raise ValueError(f"Stacked parameters disagree on the number of models: {sorted(sizes)}.")
    return sizes.pop()


@torch.no_grad()
def predict_batched(
    model: nn.Module,
    params: Mapping[str, Tensor],
    inputs: Tensor,
    *,
    batch_size: int = 1000,
    models_per_chunk: int = 64,
) -> Tensor:
    """Class predictions (B, N) of B stacked parameter sets on ``inputs`` (N, ...).

    Args:
        model: the architecture; its own parameters and buffers fill whatever ``params`` omits.
            It is put in eval mode (BatchNorm uses running statistics, which are shared).
        params: ``{name: (B, *shape)}``.
        inputs: examples on the model's device.
        batch_size: examples per forward pass.
        models_per_chunk: models per vectorised pass; with ``batch_size`` it bounds activation memory.
    """
    model.eval()
    n_models = stacked_size(params)
    fixed = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for name in params:
        fixed.pop(name, None)

    def forward_one(p: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(model, {**fixed, **p}, (x,))

    forward_many = vmap(forward_one, in_dims=(0, None))
    chunks = []
    for start in range(0, n_models, models_per_chunk):
        chunk = {name: t[start : start + models_per_chunk] for name, t in params.items()}
        preds = [forward_many(chunk, x).argmax(dim=-1) for x in inputs.split(batch_size)]
        chunks.append(torch.cat(preds, dim=1))
    return torch.cat(chunks, dim=0)


@torch.no_grad()
def predict_one_by_one(
    model: nn.Module, params: Mapping[str, Tensor], inputs: Tensor, *, batch_size: int = 1000
) -> Tensor:
    """Reference implementation of :func:`predict_batched`: load each model, run it, repeat."""
    model.eval()
    original = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        rows = []
        for i in range(stacked_size(params)):
            model.load_state_dict({name: t[i] for name, t in params.items()}, strict=False)
            rows.append(torch.cat([model(x).argmax(dim=-1) for x in inputs.split(batch_size)]))
        return torch.stack(rows)
    finally:
        model.load_state_dict(original)


def accuracy(predictions: Tensor, labels: Tensor) -> Tensor:
    """Accuracy per model, (B,) float, from predictions (B, N) and labels (N,)."""
    return (predictions == labels).float().mean(dim=-1)
