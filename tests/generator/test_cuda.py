"""The generator on a GPU gives what it gives on the CPU (these run where CUDA is visible: the device check)."""

import pytest
import torch

from mge.generator import LatentSampler
from mge.latent import LatentCodec, keep_mask

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_keep_mask_on_cuda_equals_the_cpu_mask():
    energy = torch.randn(16, 3, 5, 5, generator=torch.Generator().manual_seed(0)).square()
    for threshold in (0.5, 0.9, 0.99, 1.0):
        on_gpu = keep_mask(energy.cuda(), threshold)
        assert on_gpu.device.type == "cuda"
        assert torch.equal(on_gpu.cpu(), keep_mask(energy, threshold))


@cuda
def test_sampler_on_cuda_keeps_the_high_energy_coefficients_of_the_center():
    g = torch.Generator().manual_seed(0)
    center = {"conv": torch.randn(8, 3, 3, 3, generator=g).cuda(), "bias": torch.randn(8, generator=g).cuda()}
    codec = LatentCodec("kernel")
    sampler = LatentSampler(center, codec)
    out = sampler.sample(4, threshold=0.9, alpha=1.0, generator=torch.Generator(device="cuda").manual_seed(1))
    for name, candidates in out.items():
        assert candidates.device.type == "cuda" and candidates.shape == (4, *center[name].shape)
        mask = sampler.masks(0.9)[name]
        z = codec.encode(candidates, center[name].shape)
        kept = sampler.coefficients[name].expand_as(z)[:, mask]
        assert torch.allclose(z[:, mask], kept, atol=1e-4)
        assert not torch.allclose(candidates, center[name].expand_as(candidates))  # the rest was redrawn


@cuda
def test_generate_pool_on_cuda_keeps_the_requested_members(tmp_path, digits_seed_dir):
    from mge.discriminator import DiscriminatorSettings
    from mge.generator import GeneratorSettings
    from mge.runs import GenerateSettings, generate_pool

    settings = GenerateSettings(
        generator=GeneratorSettings(n_models=4, batch_size=16, max_rounds=10, threshold=0.99),
        discriminator=DiscriminatorSettings(),
        pool_dir=tmp_path / "pool",
        device="cuda",
        time_probe_steps=1,
    )
    report = generate_pool(settings, digits_seed_dir)
    metrics = report.to_dict()
    assert metrics["n_kept"] == 4 and metrics["time_reference"]["device"] == "cuda"
    assert metrics["test"]["accuracy"]["min"] > 0.5  # members scored on the test set, on the GPU
