"""Pixel space <-> normalised space, and the guard against normalised inputs."""

import pytest
import torch

from mge.adversarial import check_pixels, normalise, to_pixels

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # CIFAR-10's, three channels


def test_normalise_undoes_to_pixels_per_channel():
    pixels = torch.rand(5, 3, 4, 4)
    normalised = normalise(pixels, MEAN, STD)
    assert torch.allclose(normalised[:, 1], (pixels[:, 1] - MEAN[1]) / STD[1])
    assert torch.allclose(to_pixels(normalised, MEAN, STD), pixels, atol=1e-6)


def test_to_pixels_clamps_rounding_errors_into_the_unit_box():
    x = normalise(torch.tensor([0.0, 1.0]).view(2, 1, 1, 1).expand(2, 3, 2, 2), MEAN, STD)
    pixels = to_pixels(x * (1 + 1e-6), MEAN, STD)  # rounding pushes both ends just outside [0, 1]
    assert pixels.min() >= 0 and pixels.max() <= 1


def test_normalised_inputs_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="to_pixels"):
        check_pixels(normalise(torch.rand(2, 3, 4, 4), MEAN, STD))


@pytest.mark.parametrize(
    ("mean", "std", "match"), [((0.5,), (0.2,), "3 channels but mean and std have 1"), (MEAN, (0.2, 0.0, 0.2), "> 0")]
)
def test_mean_and_std_must_fit_the_images(mean, std, match):
    with pytest.raises(ValueError, match=match):
        normalise(torch.rand(2, 3, 4, 4), mean, std)
