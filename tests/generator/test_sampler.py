"""Candidate sampling: exact copies at t = 1, configured statistics, batched, reproducible."""

import pytest
import torch

from mge.generator import LatentSampler
from mge.latent import LatentCodec, keep_mask


def seed_params() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(8, 3, 5, 5, generator=g) * 0.2,
        "conv.bias": torch.randn(8, generator=g) * 0.01,
        "fc.weight": torch.randn(10, 32, generator=g) * 0.1,
    }


@pytest.mark.parametrize("granularity", ["tensor", "flat", "kernel"])
def test_threshold_one_reproduces_the_seed_bit_for_bit(granularity):
    seed = seed_params()
    sampler = LatentSampler(seed, LatentCodec(granularity))
    out = sampler.sample(4, threshold=1.0, alpha=1.0, generator=torch.Generator().manual_seed(0))
    for name, w in seed.items():
        assert out[name].shape == (4, *w.shape)
        assert torch.equal(out[name], w.expand_as(out[name]))


def test_candidates_are_stacked_and_differ_from_each_other_and_the_seed():
    seed = seed_params()
    out = LatentSampler(seed, LatentCodec("kernel")).sample(
        3, threshold=0.8, alpha=1.0, generator=torch.Generator().manual_seed(0)
    )
    w = out["conv.weight"]
    assert w.shape == (3, 8, 3, 5, 5)
    assert not torch.equal(w[0], w[1])
    assert not torch.equal(w[0], seed["conv.weight"])


def test_kept_coefficients_are_preserved_and_the_rest_resampled():
    seed = seed_params()
    codec = LatentCodec("tensor")
    sampler = LatentSampler(seed, codec)
    out = sampler.sample(2, threshold=0.9, alpha=1.0, generator=torch.Generator().manual_seed(3))
    z_seed = codec.encode(seed["fc.weight"], (10, 32))
    z_cand = codec.encode(out["fc.weight"], (10, 32))
    mask = keep_mask(z_seed.square(), 0.9)
    torch.testing.assert_close(z_cand[:, mask], z_seed[mask].expand(2, -1), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(z_cand[:, ~mask], z_seed[~mask].expand(2, -1))


@pytest.mark.parametrize(("zero_mean", "alpha"), [(False, 1.0), (False, 2.0), (True, 0.5)])
def test_resampled_coefficients_have_the_configured_mean_and_std(zero_mean, alpha):
    # a large tensor so the sample statistics are tight
    w = torch.randn(256, 256, generator=torch.Generator().manual_seed(5)) + 0.3
    codec = LatentCodec("flat")
    sampler = LatentSampler({"w": w}, codec, zero_mean=zero_mean)
    out = sampler.sample(4, threshold=0.5, alpha=alpha, generator=torch.Generator().manual_seed(6))
    z_seed = codec.encode(w, w.shape)
    mask = keep_mask(z_seed.square(), 0.5)
    replaced = z_seed[~mask]
    drawn = codec.encode(out["w"], w.shape)[:, ~mask]
    expected_mean = 0.0 if zero_mean else replaced.mean().item()
    expected_std = alpha * replaced.std(unbiased=False).item()
    assert drawn.mean().item() == pytest.approx(expected_mean, abs=0.02 * max(expected_std, 1e-3) + 1e-4)
    assert drawn.std().item() == pytest.approx(expected_std, rel=0.02)


def test_same_generator_state_gives_the_same_candidates():
    sampler = LatentSampler(seed_params(), LatentCodec("kernel"))
    a = sampler.sample(5, threshold=0.9, alpha=1.0, generator=torch.Generator().manual_seed(11))
    b = sampler.sample(5, threshold=0.9, alpha=1.0, generator=torch.Generator().manual_seed(11))
    c = sampler.sample(5, threshold=0.9, alpha=1.0, generator=torch.Generator().manual_seed(12))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_bad_sample_arguments_raise():
    sampler = LatentSampler(seed_params(), LatentCodec("kernel"))
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="alpha"):
        sampler.sample(2, threshold=0.9, alpha=-1.0, generator=g)
    with pytest.raises(ValueError, match=">= 1"):
        sampler.sample(0, threshold=0.9, alpha=1.0, generator=g)
