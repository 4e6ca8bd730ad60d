"""The latent-space distribution test: DCT frequency bands and the energy share that moves between them."""

import pytest
import torch

from mge.discriminator import SpectralDistance, band_spectrum, frequency_bands
from mge.latent import LatentCodec


def test_kernel_bands_cut_the_summed_spatial_frequency_into_equal_bins():
    bands = frequency_bands(LatentCodec("kernel"), (2, 3, 5, 5), 4)
    # normalised frequency (u + v) / 5 over two axes, times 4 bands / 2 axes: band = floor(0.4 (u + v))
    u, v = torch.meshgrid(torch.arange(5), torch.arange(5), indexing="ij")
    expected = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 3])[u + v]
    assert torch.equal(bands[1, 2], expected)
    assert torch.equal(bands, expected.expand(2, 3, 5, 5))  # channel axes are not transformed


def test_flat_bands_follow_the_flat_position_and_a_scalar_is_one_band():
    assert frequency_bands(LatentCodec("flat"), (2, 4), 4).flatten().tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert frequency_bands(LatentCodec("tensor"), (), 4).tolist() == 0


def test_spectrum_is_the_share_of_energy_per_band():
    bands = torch.tensor([0, 0, 1, 2])
    z = torch.tensor([[1.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    spectrum = band_spectrum(z, bands, 3)
    assert spectrum[0].tolist() == pytest.approx([2 / 6, 4 / 6, 0.0])
    assert spectrum[1].tolist() == [0.0, 0.0, 0.0]  # a zero tensor has no spectrum to share out


def test_distance_is_the_energy_share_that_moved_between_bands():
    codec = LatentCodec("flat")
    seed = {"w": codec.decode(torch.tensor([2.0, 0.0, 0.0, 0.0]), (4,))}  # all energy in band 0
    # candidate: equal energy in band 0 and band 1 -> half the energy moved
    candidate = codec.decode(torch.tensor([[1.0, 0.0, 1.0, 0.0], [4.0, 0.0, 0.0, 0.0]]), (4,))
    distance = SpectralDistance(seed, codec, n_bands=2)({"w": candidate})
    assert distance.tolist() == pytest.approx([0.5, 0.0], abs=1e-6)  # scaling keeps the spectrum


def test_white_noise_moves_a_smooth_kernel_spectrum_more_than_resampling_its_weak_coefficients():
    from mge.generator import LatentSampler

    codec = LatentCodec("kernel")
    g = torch.Generator().manual_seed(0)
    # smooth kernels: energy falls off with frequency, as trained conv kernels' does
    decay = torch.exp(-torch.arange(5.0)[:, None] - torch.arange(5.0)[None, :])
    seed = {"w": codec.decode(torch.randn(16, 8, 5, 5, generator=g) * decay, (16, 8, 5, 5))}
    mge = LatentSampler(seed, codec).sample(32, threshold=0.99, alpha=1.0, generator=g)
    from mge.baselines import matched_noise

    noise = matched_noise(seed, mge, seed=1)
    spectral = SpectralDistance(seed, codec, n_bands=4)
    assert bool(spectral(mge).max() < spectral(noise).min())
