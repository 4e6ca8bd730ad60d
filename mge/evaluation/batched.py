"""Predictions of many parameter sets of one architecture, batched.

A pool's members share an architecture and differ only in their parameters, so instead of
loading N modules one after another, M models run as one *wide* network: their activations sit
side by side on the channel axis, ``(n, M * C, H, W)``, model-major, so that

- a convolution of M models is one grouped convolution (``groups = M``), a BatchNorm one
  BatchNorm over ``M * C`` channels, and ReLU, pooling and ``flatten(x, 1)`` act per channel as
  they are;
- the first parameterised layer sees the *shared* input ``(n, C, H, W)`` and runs all M models in
  one matrix product: a convolution whose kernel window is small (LeNet-5's 1x5x5, ResNet's
  3x3x3) is an ``unfold`` of the input, done once, times the ``(C*k*k, M*O)`` stacked kernels;
- a layer whose parameters are not stacked (e.g. excluded from generation) and whose input is
  still shared runs once, not M times;
- feature maps are kept channels-last, where oneDNN's grouped convolution and max-pooling are
  several times faster on CPUs than in NCHW;
- M linear layers are one batched matrix product whose ``(M, n, O)`` result is passed on as an
  ``(n, M, O)`` view, and a Flatten writes its ``(M, n, C*H*W)`` vectors once, so the fully
  connected layers copy nothing between them;
- examples are fed in tiles small enough for the widest activation of a tile to stay in cache:
  on a CPU these models are bound by memory traffic more than by arithmetic. A Sequential with a
  Flatten runs its feature maps in such tiles and its fully connected layers on the whole batch
  of ``VECTOR_TILE_EXAMPLES``, where the per-model matrix products are 2x faster;
- the number of models per tile is a multiple of what keeps the first layer's matrix product
  ``M * O`` columns a multiple of 8 (the last tile is padded with copies of its last model):
  MKL's sgemm runs 2-3x slower otherwise.

The wide network is made by swapping the leaf modules of a shallow copy of the model (its
tensors are shared, not copied). It is only used when every leaf module is of a kind it knows,
and after a self-check: three deliberately different parameter sets (the first member and two
permutations of it) must give the logits of ``torch.func.vmap(functional_call)``. Anything else
(unknown layers, channel-mixing functional code in a ``forward``) falls back to that ``vmap``
path, which is always correct but slow on CPUs (it materialises ``(M, n, C, H, W)`` activations
and copies them around every convolution).

Predictions equal :func:`predict_one_by_one`'s up to floating-point rounding: the sums run in
another order, so an example whose two top logits tie to ~1e-6 could in principle flip; the
tests and ``benchmarks/bench_mge.py`` check equality.
"""

from __future__ import annotations

import copy
import logging
import math
import weakref
from collections.abc import Callable, Mapping
from typing import Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

# Per-tile budget, in float32 elements, for the widest activation of M models on a tile of
# examples (2**22 floats = 16 MiB, i.e. 55 MNIST images for 16 LeNet-5s, 13 for 64). On 2 CPU
# cores 2**22-2**23 were fastest: larger tiles are bound by memory traffic, smaller ones by the
# per-operator cost (every operator call synchronises the intra-op threads).
TILE_BUDGET = 2**22
# Fewest examples per tile before the number of models per tile is cut instead.
MIN_TILE_EXAMPLES = 8
# Examples per pass of the fully connected layers after a Flatten (see _Staged): a per-model
# matrix product of 13 rows ran at 35 GFLOP/s on one core, of 104 rows at 80.
VECTOR_TILE_EXAMPLES = 128
# Shared-input convolutions with at most this many inputs per output (C * kh * kw) run as
# unfold + one matrix product; oneDNN handles few input channels poorly.
UNFOLD_MAX_WINDOW = 64

_ELEMENTWISE = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardtanh,
    nn.Identity, nn.Dropout, nn.Dropout2d,
)  # fmt: skip
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
Output = Literal["logits", "features"]
log = logging.getLogger("mge")
_TENSOR_NAMES = ("weight", "bias", "running_mean", "running_var")  # what a wide layer reads


def stacked_size(params: Mapping[str, Tensor]) -> int:
    """Number of models in a stacked parameter dict; every tensor must agree."""
    sizes = {t.shape[0] for t in params.values()}
    if len(sizes) != 1:
        raise ValueError(f"Stacked parameters disagree on the number of models: {sorted(sizes)}.")
    return sizes.pop()


# --------------------------------------------------------------------------- the wide network


class _Unsupported(Exception):
    """The wide path cannot run this model; the vmap path will."""


class _WideLayer(nn.Module):
    """A parameterised layer of M models side by side; ``m`` and ``tensors`` are set per chunk."""

    def __init__(self, source: nn.Module, prefix: str) -> None:
        super().__init__()
        self.source = [source]  # a list hides it from nn.Module: the wide tree owns no tensors
        self.prefix = prefix
        self.m = 1
        self.stacked = False  # does any tensor of this layer differ between the models?
        self.tensors: dict[str, Tensor | None] = {}
        self.shared: dict[str, Tensor | None] = {}

    def load(self, params: Mapping[str, Tensor], fixed: Mapping[str, Tensor], m: int) -> None:
        """Point the layer at ``m`` models: stacked tensors are flattened to ``(m * d0, ...)``."""
        self.m, self.tensors, self.shared = m, {}, {}
        self.stacked = any(self.prefix + n in params for n in _TENSOR_NAMES)
        for name in _TENSOR_NAMES:
            key = self.prefix + name
            t: Tensor | None
            if key in params:
                t = params[key].reshape(m * params[key].shape[1], *params[key].shape[2:])
            else:
                t = self.shared[name] = fixed.get(key)
                t = None if t is None else t.repeat(m, *([1] * (t.dim() - 1)))
            if t is not None and t.dim() == 4:  # conv kernels: once per chunk, not per tile
                t = t.contiguous(memory_format=torch.channels_last)
            self.tensors[name] = t
        self.prepare()

    def prepare(self) -> None:
        """Per-chunk layouts a subclass computes once rather than per tile."""

    def weights(self, shared: bool) -> tuple[Tensor, Tensor | None]:
        """``(weight, bias)`` of one model (``shared``) or of all M side by side; every such layer has a weight."""
        t = self.shared if shared else self.tensors
        weight = t["weight"]
        if weight is None:
            raise _Unsupported(f"{self.prefix}: no weight")
        return weight, t["bias"]

    def is_shared(self, x: Tensor, width: int) -> bool:
        """Is ``x`` the models' common input (``width`` channels) rather than M side by side?"""
        if x.shape[1] == width * self.m and self.m > 1:
            return False
        if x.shape[1] == width:
            return True
        raise RuntimeError(f"{self.prefix}: got {x.shape[1]} channels, expected {width} or {width * self.m}.")


class _WideConv2d(_WideLayer):
    def forward(self, x: Tensor) -> Tensor:
        conv: nn.Conv2d = self.source[0]  # type: ignore[assignment]
        padding = cast(tuple[int, int], conv.padding)  # string paddings never get a wide layer
        shared = self.is_shared(x, conv.in_channels)
        if shared and not self.stacked:  # identical in every model: compute once, stay shared
            return F.conv2d(x, *self.weights(shared=True), conv.stride, padding, conv.dilation, conv.groups)
        w, b = self.weights(shared=False)
        if not shared:
            return F.conv2d(x, w, b, conv.stride, padding, conv.dilation, conv.groups * self.m)
        if conv.groups != 1:
            x = x.repeat(1, self.m, 1, 1)
            return F.conv2d(x, w, b, conv.stride, padding, conv.dilation, conv.groups * self.m)
        kh, kw = conv.kernel_size
        if conv.in_channels * kh * kw > UNFOLD_MAX_WINDOW or conv.dilation != (1, 1):
            return F.conv2d(x, w, b, conv.stride, padding, conv.dilation, 1)
        # All models on the shared input: one (n*Ho*Wo, C*kh*kw) x (C*kh*kw, M*O) product whose
        # result is already the channels-last layout of the (n, M*O, Ho, Wo) output.
        n, c = x.shape[:2]
        (ph, pw), (sh, sw) = padding, conv.stride
        patches = F.pad(x, (pw, pw, ph, ph)).unfold(2, kh, sh).unfold(3, kw, sw)  # (n, C, Ho, Wo, kh, kw)
        ho, wo = patches.shape[2:4]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
        kernels = w.reshape(w.shape[0], -1).t()  # (C*kh*kw, M*O)
        out = patches @ kernels if b is None else torch.addmm(b, patches, kernels)
        return out.view(n, ho, wo, -1).permute(0, 3, 1, 2)  # (n, M*O, Ho, Wo), channels-last


class _WideBatchNorm(_WideLayer):
    def forward(self, x: Tensor) -> Tensor:
        bn: nn.modules.batchnorm._BatchNorm = self.source[0]  # type: ignore[assignment]
        if x.dim() == 3 and x.shape[1] == self.m and self.m > 1:  # (n, M, C) from a wide Linear
            x = x.reshape(x.shape[0], -1)
        t = self.shared if self.is_shared(x, bn.num_features) and not self.stacked else self.tensors
        if t is self.tensors and x.shape[1] == bn.num_features and self.m > 1:
            x = x.repeat(1, self.m, *([1] * (x.dim() - 2)))
        return F.batch_norm(x, t["running_mean"], t["running_var"], t["weight"], t["bias"], False, 0.0, bn.eps)


class _WideLinear(_WideLayer):
    """M linear layers as one batched matrix product; the output ``(n, M, O)`` is a view of ``(M, n, O)``.

    Keeping the batched product's own layout (rather than copying it to ``(n, M * O)``) lets the
    next wide Linear read its input ``(M, n, O)`` without a copy; elementwise layers in between do
    not care about the layout.
    """

    def prepare(self) -> None:
        linear: nn.Linear = self.source[0]  # type: ignore[assignment]
        k, o, m = linear.in_features, linear.out_features, self.m
        w, b = self.tensors["weight"], self.tensors["bias"]
        self.wt = None if w is None else w.view(m, o, k).transpose(1, 2).contiguous()  # (M, K, O), once per chunk
        self.bt = None if b is None else b.view(m, 1, o)

    def forward(self, x: Tensor) -> Tensor:
        linear: nn.Linear = self.source[0]  # type: ignore[assignment]
        k, m = linear.in_features, self.m
        if x.dim() == 3:  # (n, M, K) from a wide Flatten or Linear
            if x.shape[1:] != (m, k):
                raise RuntimeError(f"{self.prefix}: got {tuple(x.shape)}, expected (n, {m}, {k}).")
            if not self.stacked:  # the same weights in every model
                return F.linear(x, *self.weights(shared=True))
            xs = x.transpose(0, 1)  # (M, n, K)
        elif x.dim() == 2:
            if self.is_shared(x, k):
                if not self.stacked:
                    return F.linear(x, *self.weights(shared=True))  # (n, O): still shared
                xs = x.expand(m, *x.shape)
            else:
                xs = x.reshape(x.shape[0], m, k).transpose(0, 1)
        else:
            raise RuntimeError(f"{self.prefix}: the wide path supports 2-D and 3-D inputs only, got {tuple(x.shape)}.")
        if self.wt is None:
            raise _Unsupported(f"{self.prefix}: no weight")
        out = torch.bmm(xs, self.wt) if self.bt is None else torch.baddbmm(self.bt, xs, self.wt)  # (M, n, O)
        return out.transpose(0, 1)


class _WideFlatten(nn.Module):
    """``flatten(x, 1)`` of M models' maps ``(n, M * C, H, W)``, as ``(n, M, C * H * W)`` (a view of ``(M, n, K)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.m = 1

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or self.m == 1 or x.shape[1] % self.m:
            return torch.flatten(x, 1)
        n, mc, h, w = x.shape
        buf = x.reshape(n, self.m, mc // self.m, h, w).permute(1, 0, 2, 3, 4).contiguous()  # (M, n, C, H, W)
        return buf.view(self.m, n, -1).transpose(0, 1)


def _wide_layer(module: nn.Module, prefix: str) -> _WideLayer | None:
    if isinstance(module, nn.Conv2d) and module.padding_mode == "zeros" and not isinstance(module.padding, str):
        return _WideConv2d(module, prefix)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
        return _WideBatchNorm(module, prefix)
    if isinstance(module, nn.Linear):
        return _WideLinear(module, prefix)
    return None


def _per_channel(module: nn.Module) -> bool:
    """Parameter-free leaf modules that act on each channel alone (so on each model alone)."""
    if isinstance(module, nn.Flatten):
        return module.start_dim == 1 and module.end_dim == -1
    return isinstance(module, _ELEMENTWISE + _POOLS)


def _monotone(module: nn.Module) -> bool:
    """Elementwise and non-decreasing, also as computed in floating point: commutes with max."""
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope >= 0
    return isinstance(module, (nn.ReLU, nn.ReLU6, nn.Hardtanh))


def _pool_before_activation(seq: nn.Sequential) -> None:
    """Swap ``activation, MaxPool2d`` into ``MaxPool2d, activation`` (in place) inside ``seq``.

    max(f(a), f(b)) = f(max(a, b)) exactly for a non-decreasing f (rounding is monotone too), so
    the result is the same bit for bit, and the activation touches a quarter of the values.
    """
    items = list(seq)
    for i in range(len(items) - 1):
        act, pool = items[i], items[i + 1]
        if _monotone(act) and isinstance(pool, nn.MaxPool2d) and not pool.return_indices:
            act = copy.copy(act)
            act.inplace = True  # type: ignore[assignment]  # the pooled tensor is new and used by nothing else
            items[i], items[i + 1] = pool, act
    for i, module in enumerate(items):
        seq[i] = module


class _Staged(nn.Module):
    """A Sequential cut after its Flatten: the feature maps run on sub-tiles, the vectors on the whole tile.

    Feature maps are wide and must be cut into small tiles to stay in cache; the fully connected
    layers after the Flatten hold little data per example, and a per-model matrix product of a
    dozen rows runs at half the speed of one of a hundred.
    """

    def __init__(self, seq: nn.Sequential, cut: int) -> None:
        super().__init__()
        self.maps = nn.Sequential(*list(seq)[: cut + 1])
        self.vectors = nn.Sequential(*list(seq)[cut + 1 :])
        self.sub = 0  # examples per sub-tile of the maps; 0: all at once

    def forward(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        if not self.sub or n <= self.sub:
            return self.vectors(self.maps(x))
        parts = [self.maps(x[i : i + self.sub]) for i in range(0, n, self.sub)]
        if all(p.dim() == 3 for p in parts):  # (s, M, K) views of (M, s, K): join as (M, n, K)
            return self.vectors(torch.cat([p.transpose(0, 1) for p in parts], dim=1).transpose(0, 1))
        return self.vectors(torch.cat(parts))


def _stage(net: nn.Module) -> tuple[nn.Module, list[_Staged]]:
    """Replace every Sequential with a wide Flatten followed by a wide Linear by a :class:`_Staged`."""
    staged = []
    for name, module in list(net.named_modules()):
        if not isinstance(module, nn.Sequential):
            continue
        items = list(module)
        cuts = [i for i, m in enumerate(items) if isinstance(m, _WideFlatten)]
        if len(cuts) != 1 or not any(isinstance(m, _WideLinear) for m in items[cuts[0] + 1 :]):
            continue
        wrapper = _Staged(module, cuts[0])
        staged.append(wrapper)
        if not name:
            net = wrapper
            continue
        parent_name, _, attr = name.rpartition(".")
        setattr(net.get_submodule(parent_name) if parent_name else net, attr, wrapper)
    return net, staged


def _model_alignment(first: _WideLayer) -> int:
    """Models per tile should be a multiple of this: the shared-input matrix product of a first
    convolution with O output channels has M * O columns, and MKL's sgemm runs 2-3x slower when that
    is not a multiple of 8 (LeNet-5, O = 6, on one core: 18-20 GFLOP/s for odd M, 46-65 for M = 8k)."""
    if not isinstance(first, _WideConv2d):
        return 1
    conv: nn.Conv2d = first.source[0]  # type: ignore[assignment]
    kh, kw = conv.kernel_size
    if conv.groups != 1 or conv.in_channels * kh * kw > UNFOLD_MAX_WINDOW or conv.dilation != (1, 1):
        return 1
    return 8 // math.gcd(8, conv.out_channels)


class _WideModel:
    """``model`` rebuilt to run M parameter sets side by side (see the module docstring)."""

    def __init__(self, model: nn.Module) -> None:
        tensors = [*model.parameters(), *model.buffers()]
        self.net = copy.deepcopy(model, memo={id(t): t for t in tensors})  # structure, tensors shared
        self.layers: list[_WideLayer] = []
        self.flattens: list[_WideFlatten] = []
        for name, module in list(self.net.named_modules()):
            if list(module.children()):  # a container: its own forward is checked numerically
                if list(module.parameters(recurse=False)) or list(module.buffers(recurse=False)):
                    raise _Unsupported(f"{name or 'the model'} holds tensors outside its layers")
                continue
            wide = _wide_layer(module, f"{name}.")
            if wide is None and isinstance(module, nn.Flatten) and _per_channel(module):
                flat = _WideFlatten()
                parent_name, _, attr = name.rpartition(".")
                parent = self.net.get_submodule(parent_name) if parent_name else self.net
                setattr(parent, attr, flat)
                self.flattens.append(flat)
                continue
            if wide is None:
                if not _per_channel(module):
                    raise _Unsupported(f"{name} ({type(module).__name__}) has no wide form")
                continue
            parent_name, _, attr = name.rpartition(".")
            parent = self.net.get_submodule(parent_name) if parent_name else self.net
            setattr(parent, attr, wide)
            self.layers.append(wide)
        if not self.layers:
            raise _Unsupported("no Conv2d, BatchNorm or Linear layer")
        for module in self.net.modules():
            if isinstance(module, nn.Sequential):
                _pool_before_activation(module)
            # drop the shared tensors (each call brings its own): a cached wide network must
            # not keep a model's old weights alive
            module._parameters = dict.fromkeys(module._parameters)
            module._buffers = dict.fromkeys(module._buffers)
        self.names = {f"{layer.prefix}{n}" for layer in self.layers for n in _TENSOR_NAMES}
        self.net, self.staged = _stage(self.net)
        self.align = _model_alignment(self.layers[0])

    def load(self, params: Mapping[str, Tensor], fixed: Mapping[str, Tensor]) -> None:
        """Point every wide layer at the ``M`` stacked parameter sets (once per chunk of models, not per tile)."""
        m = stacked_size(params)
        if not set(params) <= self.names:
            raise _Unsupported(f"stacked tensors outside the wide layers: {sorted(set(params) - self.names)}")
        for layer in self.layers:
            layer.load(params, fixed, m)
        for flat in self.flattens:
            flat.m = m
        self.m = m

    def run(self, params: Mapping[str, Tensor], fixed: Mapping[str, Tensor], x: Tensor, output: Output) -> Tensor:
        """Logits or features ``(M, n, d)`` of the ``M`` stacked parameter sets (:meth:`load`, then :meth:`forward`)."""
        self.load(params, fixed)
        return self.forward(x, output)

    def forward(self, x: Tensor, output: Output) -> Tensor:
        """Logits or features ``(M, n, d)`` of the loaded parameter sets.

        ``x`` is the shared input ``(n, C, ...)`` or one input per model, side by side on the
        channel axis ``(n, M * C, ...)``: the first layer then runs as a grouped layer like any other.
        """
        m = self.m
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        forward = self.net if output == "logits" else getattr(self.net, "forward_features")  # noqa: B009
        out = forward(x)
        if out.dim() == 3 and out.shape[1] == m:  # (n, M, d): a wide Linear's output
            return out.transpose(0, 1)
        if out.dim() != 2:
            raise RuntimeError(f"expected (n, {output}) from the wide network, got {tuple(out.shape)}")
        n = out.shape[0]
        if out.shape[1] % m:
            raise RuntimeError(f"{out.shape[1]} {output} do not split into {m} models")
        return out.view(n, m, -1).transpose(0, 1)


class _FeaturesOf(nn.Module):
    """``model.forward_features`` as a module's forward, for ``functional_call`` (names gain ``model.``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> Tensor:
        return self.model.forward_features(x)  # type: ignore[operator]


def _vmap_run(
    model: nn.Module,
    params: Mapping[str, Tensor],
    fixed: Mapping[str, Tensor],
    x: Tensor,
    output: Output,
    per_member: bool = False,
) -> Tensor:
    """``(M, n, d)`` through ``vmap(functional_call)``; ``x`` is shared ``(n, ...)`` or per model ``(M, n, ...)``."""
    module, prefix = (model, "") if output == "logits" else (_FeaturesOf(model), "model.")

    def forward_one(p: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(module, {prefix + k: v for k, v in {**fixed, **p}.items()}, (xb,))

    return vmap(forward_one, in_dims=(0, 0 if per_member else None))(dict(params), x)


def _self_check(
    wide: _WideModel, model: nn.Module, params: Mapping[str, Tensor], fixed: Mapping[str, Tensor], x: Tensor
) -> int | None:
    """Compare the wide path with vmap on 3 distinct parameter sets; return floats per example-model.

    The sets are the first member and two random permutations of each of its tensors: members of
    an MGE pool are near-copies of each other, so a wrong model layout would go unseen on them.
    Logits and, where the model has ``forward_features``, features are compared. Returns ``None``
    when the paths disagree.
    """
    g = torch.Generator().manual_seed(0)
    probe = {}
    for k, v in params.items():
        first = v[0]
        perms = [torch.randperm(first.numel(), generator=g).to(first.device) for _ in range(2)]
        probe[k] = torch.stack([first, *(first.flatten()[p].view_as(first) for p in perms)])
    xs = x[:4]
    widest = [0]

    def track(_module: nn.Module, _inputs: object, output: object) -> None:
        if isinstance(output, Tensor):
            widest[0] = max(widest[0], output[0].numel())

    handles = [module.register_forward_hook(track) for module in wide.net.modules()]
    try:
        got = wide.run(probe, fixed, xs, "logits")
    finally:
        for h in handles:
            h.remove()
    outputs: list[Output] = ["features"] if hasattr(model, "forward_features") else []
    pairs = [(got, _vmap_run(model, probe, fixed, xs, "logits"))]
    pairs += [(wide.run(probe, fixed, xs, o), _vmap_run(model, probe, fixed, xs, o)) for o in outputs]
    for got_o, want in pairs:
        scale = want.abs().max().clamp(min=1e-6)
        if got_o.shape != want.shape or not torch.allclose(got_o, want, rtol=1e-4, atol=1e-4 * float(scale)):
            return None
    return max(1, widest[0] // 3)


# The wide network, its floats per example-model and, where it cannot be used, why; per model, per
# set of stacked names and input kind: the discriminator calls predict_batched every round with the
# same model.
_CACHE: weakref.WeakKeyDictionary[nn.Module, dict[tuple, tuple[_WideModel | None, int, str | None]]] = (
    weakref.WeakKeyDictionary()
)


def _wide_model(
    model: nn.Module, params: Mapping[str, Tensor], fixed: Mapping[str, Tensor], example: Tensor
) -> tuple[_WideModel | None, int, str | None]:
    """``(wide network, floats per example-model, None)``, or ``(None, 0, reason)`` for the vmap path.

    ``example`` is a shared input ``(n, ...)``; its first rows run the self-check.
    """
    key = (tuple(sorted(params)), tuple(example.shape[1:]), example.dtype, example.device.type)
    cached = _CACHE.setdefault(model, {})
    if key not in cached:
        wide: _WideModel | None = None
        floats, reason = 0, None
        try:
            wide = _WideModel(model)
            with torch.no_grad():
                floats = _self_check(wide, model, params, fixed, example) or 0
            if not floats:
                reason = "its logits differ from vmap(functional_call)'s in the self-check"
        except (_Unsupported, RuntimeError) as err:
            reason = str(err)
        if reason is not None:
            log.warning(
                "batched evaluation of %s falls back to vmap (slower on CPUs): %s", type(model).__name__, reason
            )
            cached[key] = (None, 0, reason)
        else:
            cached[key] = (wide, floats, None)
    return cached[key]


# --------------------------------------------------------------------------- public functions


def _split(model: nn.Module, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The model's own tensors that ``params`` does not replace."""
    fixed = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    for name in params:
        fixed.pop(name, None)
    return fixed


def wide_path_failure(model: nn.Module, params: Mapping[str, Tensor], inputs: Tensor) -> str | None:
    """Why batched evaluation of ``model`` with these stacked names runs on the slow vmap path (None: it does not).

    Args:
        model: the architecture.
        params: stacked tensors ``{name: (B, *shape)}`` (only the names and shapes matter).
        inputs: example inputs ``(N, ...)``.
    """
    return _wide_model(model, params, _split(model, params), inputs)[2]


def _run_tiles(
    model: nn.Module,
    params: Mapping[str, Tensor],
    inputs: Tensor,
    output: Output,
    batch_size: int,
    models_per_chunk: int,
    reduce: Callable[[Tensor], Tensor] | None,
    per_member: bool,
) -> Tensor:
    """``(B, N, ...)``: ``output`` of every member on every example, each tile passed through ``reduce``."""
    model.eval()
    n_models = stacked_size(params)
    fixed = _split(model, params)
    if per_member and inputs.shape[0] != n_models:
        raise ValueError(
            f"inputs_per_member needs inputs of shape (B, N, ...) with B = {n_models} members, "
            f"got {tuple(inputs.shape)}."
        )
    example = inputs[0] if per_member else inputs
    n_examples = example.shape[0]
    wide, floats_per_example, _ = _wide_model(model, params, fixed, example)
    finish = reduce or (lambda t: t)

    sink = _Sink(n_models, n_examples)
    if wide is None:
        for start in range(0, n_models, models_per_chunk):
            chunk = {name: t[start : start + models_per_chunk] for name, t in params.items()}
            for first in range(0, n_examples, batch_size):
                if per_member:
                    x = inputs[start : start + models_per_chunk, first : first + batch_size]
                else:
                    x = inputs[first : first + batch_size]
                sink.put(start, first, finish(_vmap_run(model, chunk, fixed, x, output, per_member)))
    else:
        # tile: as many examples as fit the budget; below MIN_TILE_EXAMPLES, fewer models instead
        models_per_tile = min(
            models_per_chunk, n_models, max(1, TILE_BUDGET // (floats_per_example * MIN_TILE_EXAMPLES))
        )
        models_per_tile = -(-n_models // -(-n_models // models_per_tile))  # equal chunks, not 55 + 9
        align = 1 if per_member else wide.align
        models_per_tile = -(-models_per_tile // align) * align
        for start in range(0, n_models, models_per_tile):
            chunk = {name: t[start : start + models_per_tile] for name, t in params.items()}
            m = stacked_size(chunk)
            pad = -m % align
            if pad:  # copies of the last model, whose outputs are dropped
                chunk = {name: torch.cat([t, t[-1:].expand(pad, *t.shape[1:])]) for name, t in chunk.items()}
            tile = max(MIN_TILE_EXAMPLES, min(batch_size, TILE_BUDGET // (floats_per_example * (m + pad))))
            wide.load(chunk, fixed)
            if wide.staged:
                for st in wide.staged:
                    st.sub = tile
                tile = max(tile, min(batch_size, VECTOR_TILE_EXAMPLES))
            for first in range(0, n_examples, tile):
                if per_member:
                    xm = inputs[start : start + m, first : first + tile]  # (m, t, C, ...)
                    x = xm.transpose(0, 1).reshape(xm.shape[1], m * xm.shape[2], *xm.shape[3:])
                else:
                    x = inputs[first : first + tile]
                sink.put(start, first, finish(wide.forward(x, output)[:m]))
    return sink.result()


class _Sink:
    """Collects ``(models, examples, ...)`` tiles into one ``(B, N, ...)`` tensor.

    Without gradients the tiles are copied into one tensor allocated at the first tile: small
    long-lived allocations made between the large short-lived activations of each tile fragment
    the heap (measured: RSS grew by GBs). With gradients they are kept and concatenated, so that
    the result stays differentiable.
    """

    def __init__(self, n_models: int, n_examples: int) -> None:
        self.shape = (n_models, n_examples)
        self.out: Tensor | None = None
        self.tiles: dict[int, list[Tensor]] = {}

    def put(self, start: int, first: int, tile: Tensor) -> None:
        if tile.requires_grad:
            self.tiles.setdefault(start, []).append(tile)  # tiles arrive model chunk by chunk, in order
            return
        if self.out is None:
            self.out = torch.empty(*self.shape, *tile.shape[2:], dtype=tile.dtype, device=tile.device)
        self.out[start : start + tile.shape[0], first : first + tile.shape[1]] = tile

    def result(self) -> Tensor:
        if self.tiles:
            return torch.cat([torch.cat(row, dim=1) for row in self.tiles.values()], dim=0)
        if self.out is None:
            raise ValueError("Nothing to evaluate: no member or no example.")
        return self.out


def batched_logits(
    model: nn.Module,
    params: Mapping[str, Tensor],
    inputs: Tensor,
    *,
    batch_size: int = 1000,
    models_per_chunk: int = 64,
    inputs_per_member: bool = False,
) -> Tensor:
    """Logits ``(B, N, classes)`` of B stacked parameter sets.

    Differentiable (with respect to ``inputs`` and ``params``) when called with gradients enabled,
    which is how attacks on many members at once get their input gradients; wrap the call in
    ``torch.no_grad()`` otherwise.

    Args:
        model: the architecture; its own parameters and buffers fill whatever ``params`` omits.
            It is put in eval mode (BatchNorm uses running statistics).
        params: ``{name: (B, *shape)}``.
        inputs: ``(N, ...)`` shared by every member, or with ``inputs_per_member`` ``(B, N, ...)``, one
            set per member (an attack's inputs, each made against its own member).
        batch_size: most examples per forward pass.
        models_per_chunk: most models per vectorised pass; with ``batch_size`` it bounds
            activation memory. On the wide path both are cut further so that a tile's widest
            activation stays within ``TILE_BUDGET`` floats.
        inputs_per_member: see ``inputs``.
    """
    return _run_tiles(model, params, inputs, "logits", batch_size, models_per_chunk, None, inputs_per_member)


def batched_features(
    model: nn.Module,
    params: Mapping[str, Tensor],
    inputs: Tensor,
    *,
    batch_size: int = 1000,
    models_per_chunk: int = 64,
    inputs_per_member: bool = False,
) -> Tensor:
    """Penultimate features ``(B, N, feature_dim)`` (the model's ``forward_features``); as :func:`batched_logits`."""
    if not hasattr(model, "forward_features"):
        raise ValueError(f"{type(model).__name__} has no forward_features(); register models that define it.")
    return _run_tiles(model, params, inputs, "features", batch_size, models_per_chunk, None, inputs_per_member)


@torch.no_grad()
def predict_batched(
    model: nn.Module,
    params: Mapping[str, Tensor],
    inputs: Tensor,
    *,
    batch_size: int = 1000,
    models_per_chunk: int = 64,
    inputs_per_member: bool = False,
) -> Tensor:
    """Class predictions ``(B, N)`` of B stacked parameter sets; arguments as :func:`batched_logits`."""
    return _run_tiles(
        model,
        params,
        inputs,
        "logits",
        batch_size,
        models_per_chunk,
        lambda logits: logits.argmax(dim=-1),
        inputs_per_member,
    )


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
