"""Fusion in the DCT domain: each kind takes the coefficients it promises from each parent."""

import pytest
import torch

from mge.evolution import band_frequency, fuse, fuse_band, fuse_interpolate, fuse_uniform
from mge.latent import LatentCodec


def parents(n: int = 3) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    shapes = {"conv.weight": (8, 3, 3, 3), "conv.bias": (8,), "fc.weight": (10, 32)}
    a = {k: torch.randn(n, *s, generator=g) for k, s in shapes.items()}
    b = {k: torch.randn(n, *s, generator=g) for k, s in shapes.items()}
    return a, b


def test_band_frequency_is_the_mean_normalised_index_over_the_transformed_axes():
    kernel = band_frequency((4, 2, 3, 3), LatentCodec("kernel"))
    assert kernel.shape == (4, 2, 3, 3)
    assert kernel[0, 0].tolist() == [[0.0, 0.25, 0.5], [0.25, 0.5, 0.75], [0.5, 0.75, 1.0]]
    assert torch.equal(kernel[3, 1], kernel[0, 0])  # the same spatial split for every kernel
    tensor = band_frequency((5, 2), LatentCodec("tensor"))
    assert tensor[4, 1].item() == 1.0 and tensor[0, 0].item() == 0.0
    assert tensor[2, 0].item() == pytest.approx(0.25)  # (2/4 + 0/1) / 2
    flat = band_frequency((2, 3), LatentCodec("flat"))
    assert flat.flatten().tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ones = band_frequency((1, 1), LatentCodec("tensor"))  # no axis carries a frequency
    assert ones.tolist() == [[0.0]]


@pytest.mark.parametrize("granularity", ["kernel", "tensor", "flat"])
@pytest.mark.parametrize("cut", [0.0, 0.3, 0.75])
def test_band_split_keeps_each_parents_band_exactly(granularity, cut):
    codec = LatentCodec(granularity)
    a, b = parents()
    children = fuse(a, b, codec, kind="band", generator=torch.Generator(), band_cut=cut)
    for name, w in children.items():
        shape = w.shape[1:]
        low = band_frequency(shape, codec) <= cut
        za, zb = codec.encode(a[name], shape), codec.encode(b[name], shape)
        # exactly, in the coefficient domain
        z = fuse_band(za, zb, band_frequency(shape, codec), cut)
        assert torch.equal(z[:, low], za[:, low]) and torch.equal(z[:, ~low], zb[:, ~low])
        # and up to float32 rounding through the weight-domain children
        zc = codec.encode(w, shape)
        torch.testing.assert_close(zc[:, low], za[:, low], atol=1e-5, rtol=0)
        torch.testing.assert_close(zc[:, ~low], zb[:, ~low], atol=1e-5, rtol=0)
        assert low.any() and (~low).any()  # both parents contribute to every tensor


@pytest.mark.parametrize("granularity", ["kernel", "tensor", "flat"])
def test_interpolation_at_0_and_1_gives_the_parents(granularity):
    codec = LatentCodec(granularity)
    a, b = parents()
    for name in a:
        shape = a[name].shape[1:]
        za, zb = codec.encode(a[name], shape), codec.encode(b[name], shape)
        assert torch.equal(fuse_interpolate(za, zb, torch.zeros(3)), za)
        assert torch.equal(fuse_interpolate(za, zb, torch.ones(3)), zb)
        halfway = fuse_interpolate(za, zb, torch.tensor([0.0, 0.5, 1.0]))
        torch.testing.assert_close(halfway[1], (za[1] + zb[1]) / 2)
    at_a = fuse(a, b, codec, kind="interpolate", generator=torch.Generator(), weight=0.0)
    at_b = fuse(a, b, codec, kind="interpolate", generator=torch.Generator(), weight=1.0)
    for name in a:
        assert torch.equal(at_a[name], a[name])  # a + decode(0): bit for bit
        torch.testing.assert_close(at_b[name], b[name], atol=1e-5, rtol=0)


def test_drawn_interpolation_weights_differ_per_child_and_are_seeded():
    a, b = parents(4)
    codec = LatentCodec("tensor")
    one = fuse(a, b, codec, kind="interpolate", generator=torch.Generator().manual_seed(1))
    two = fuse(a, b, codec, kind="interpolate", generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(one[k], two[k]) for k in one)
    # w_i = (child - a) / (b - a), the same for every element of a child, different between children
    w = ((one["fc.weight"] - a["fc.weight"]) / (b["fc.weight"] - a["fc.weight"])).flatten(1).median(dim=1).values
    assert ((w >= 0) & (w <= 1)).all() and len(set(w.round(decimals=3).tolist())) == 4


@pytest.mark.parametrize("granularity", ["kernel", "tensor", "flat"])
def test_uniform_fusion_takes_every_coefficient_from_one_of_the_parents(granularity):
    codec = LatentCodec(granularity)
    a, b = parents()
    g = torch.Generator().manual_seed(3)
    for name in a:
        shape = a[name].shape[1:]
        za, zb = codec.encode(a[name], shape), codec.encode(b[name], shape)
        z = fuse_uniform(za, zb, g)
        from_a, from_b = z == za, z == zb
        assert (from_a | from_b).all()
        assert 0.3 < from_a.float().mean().item() < 0.7  # both parents contribute, about half each
    children = fuse(a, b, codec, kind="uniform", generator=torch.Generator().manual_seed(3))
    for name, w in children.items():
        shape = w.shape[1:]
        za, zb, zc = (codec.encode(t, shape) for t in (a[name], b[name], w))
        nearest_is_a = (zc - za).abs() < (zc - zb).abs()
        gap = torch.where(nearest_is_a, (zc - za).abs(), (zc - zb).abs())
        assert gap.max() < 1e-5


def test_uniform_fusion_is_seeded():
    a, b = parents()
    codec = LatentCodec("kernel")
    one = fuse(a, b, codec, kind="uniform", generator=torch.Generator().manual_seed(5))
    two = fuse(a, b, codec, kind="uniform", generator=torch.Generator().manual_seed(5))
    three = fuse(a, b, codec, kind="uniform", generator=torch.Generator().manual_seed(6))
    assert all(torch.equal(one[k], two[k]) for k in one)
    assert not torch.equal(one["fc.weight"], three["fc.weight"])


def test_unknown_fusion_names_the_valid_kinds():
    a, b = parents()
    with pytest.raises(ValueError, match="'crossover'.*uniform.*band.*interpolate"):
        fuse(a, b, LatentCodec("kernel"), kind="crossover", generator=torch.Generator())  # type: ignore[arg-type]
