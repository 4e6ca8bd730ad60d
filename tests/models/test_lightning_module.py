"""SeedClassifier's scheduler settings are checked where they are made."""

import pytest

from mge.models.lightning_module import SeedClassifier

ARCH = {"arch": "digits_cnn", "num_classes": 10, "in_channels": 1, "image_size": 8}


@pytest.mark.parametrize("cycle_epochs", [None, 0, 2.5, True])
def test_cosine_restarts_needs_a_whole_cycle_length(cycle_epochs):
    with pytest.raises(ValueError, match="optim.cycle_epochs"):
        SeedClassifier(**ARCH, scheduler="cosine_restarts", cycle_epochs=cycle_epochs)


def test_a_cycle_length_without_warm_restarts_is_refused():
    with pytest.raises(ValueError, match="only applies to optim.scheduler=cosine_restarts"):
        SeedClassifier(**ARCH, scheduler="cosine", cycle_epochs=3)
    assert SeedClassifier(**ARCH, scheduler="cosine_restarts", cycle_epochs=3).hparams["cycle_epochs"] == 3
