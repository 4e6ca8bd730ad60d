"""The DCT latent codec: exact, energy-preserving, and a keep set that is the smallest possible."""

import pytest
import torch
import torch_dct

from mge.latent import GRANULARITIES, LatentCodec, dct_nd, idct_nd, keep_mask
from mge.latent.codec import MATRIX_MAX_LENGTH
from mge.models import build_model, list_models

# natural input geometry of each architecture in the zoo
ZOO_GEOMETRY = {
    "digits_cnn": (1, 8),
    "mlp": (1, 8),
    "lenet5": (1, 28),
    "resnet18": (3, 32),
    "conv4": (3, 84),
    "resnet12": (3, 84),
}


def zoo_shapes() -> set[tuple[int, ...]]:
    shapes = set()
    for name in list_models():
        in_channels, size = ZOO_GEOMETRY[name]
        model = build_model(name, num_classes=10, in_channels=in_channels, image_size=size)
        shapes |= {tuple(p.shape) for p in model.parameters()}
    return shapes


SHAPES = sorted(zoo_shapes())


def test_every_zoo_architecture_has_a_geometry():
    assert set(list_models()) == set(ZOO_GEOMETRY)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_round_trip_is_exact_to_float32_precision_for_every_zoo_shape(granularity):
    codec = LatentCodec(granularity)
    gen = torch.Generator().manual_seed(0)
    for shape in SHAPES:
        w = torch.randn(shape, generator=gen) * 0.1
        back = codec.decode(codec.encode(w, w.shape), w.shape)
        assert back.shape == w.shape
        torch.testing.assert_close(back, w, atol=1e-6 * max(1.0, w.abs().max().item()), rtol=1e-5)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_parseval_coefficient_energy_equals_weight_energy(granularity):
    codec = LatentCodec(granularity)
    w = torch.randn(16, 8, 3, 3, generator=torch.Generator().manual_seed(1))
    z = codec.encode(w, w.shape)
    torch.testing.assert_close(z.square().sum(), w.square().sum(), rtol=1e-5, atol=0)


def test_leading_batch_axes_are_transformed_independently():
    codec = LatentCodec("flat")
    w = torch.randn(5, 6, 4, 3, 3)
    batched = codec.encode(w, w.shape[1:])
    single = torch.stack([codec.encode(wi, wi.shape) for wi in w])
    torch.testing.assert_close(batched, single)


def test_kernel_granularity_transforms_only_spatial_axes_of_conv_weights():
    codec = LatentCodec("kernel")
    assert codec.transform_dims((6, 1, 5, 5)) == (-2, -1)
    assert codec.transform_dims((120, 400)) == (-2, -1)  # linear: falls back to the whole tensor
    assert codec.transform_dims((10,)) == (-1,)
    # a constant kernel puts all its energy in the DC coefficient of each kernel
    w = torch.ones(2, 3, 3, 3)
    z = codec.encode(w, w.shape)
    assert torch.allclose(z[..., 0, 0], torch.full((2, 3), 3.0))
    assert torch.allclose(z[..., 1:, :].abs().sum() + z[..., 0, 1:].abs().sum(), torch.tensor(0.0), atol=1e-5)


def test_unknown_granularity_is_rejected_with_valid_values():
    with pytest.raises(ValueError, match="Valid values are"):
        LatentCodec("pixel")  # type: ignore[arg-type]


def test_keep_mask_is_the_smallest_set_reaching_the_threshold():
    energy = torch.tensor([0.125, 4.0, 0.5, 2.0, 3.375])  # total 10, exact in binary
    mask = keep_mask(energy, 0.7)  # 4.0 + 3.375 >= 7; 4.0 alone < 7
    assert mask.tolist() == [False, True, False, False, True]
    for t in (0.05, 0.3, 0.5, 0.74, 0.75, 0.9, 0.99):
        m = keep_mask(energy, t)
        kept = energy[m].sum()
        assert kept >= t * energy.sum() - 1e-6
        # dropping the weakest kept coefficient falls below t: no smaller set reaches it
        assert kept - energy[m].min() < t * energy.sum()


def test_keep_mask_at_t_one_keeps_everything_even_zeros():
    energy = torch.tensor([0.0, 1.0, 0.0])
    assert keep_mask(energy, 1.0).all()


@pytest.mark.parametrize("t", [0.0, -0.1, 1.5])
def test_keep_mask_rejects_thresholds_outside_zero_one(t):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_mask(torch.ones(3), t)


@pytest.mark.parametrize("n", [3, 64, MATRIX_MAX_LENGTH, MATRIX_MAX_LENGTH + 1])
def test_matrix_and_fft_routes_compute_torch_dct_transform(n):
    x = torch.randn(4, n, generator=torch.Generator().manual_seed(n))
    torch.testing.assert_close(dct_nd(x, (-1,)), torch_dct.dct(x, norm="ortho"), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(idct_nd(x, (-1,)), torch_dct.idct(x, norm="ortho"), atol=1e-5, rtol=1e-5)


def test_batched_keep_masks_equal_keep_mask_row_by_row():
    from mge.latent import keep_masks

    g = torch.Generator().manual_seed(0)
    energy = torch.randn(6, 50, generator=g).square()
    energy[4] = 0.0  # no energy: keep everything
    energy[5, :10] = 1.0  # ties, broken by position
    thresholds = torch.tensor([0.5, 0.9, 0.99, 1.0, 0.9, 0.75], dtype=torch.float64)
    masks = keep_masks(energy, thresholds)
    for row, t, mask in zip(energy, thresholds.tolist(), masks, strict=True):
        assert torch.equal(mask, keep_mask(row, t))
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        keep_masks(energy, torch.zeros(6))
