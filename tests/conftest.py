"""Shared fixtures: composed Hydra configs shrunk for tests, and one small trained seed.

Like the lightning-hydra-template's conftest: a session-scoped fixture composes the real config
and shrinks the run (cpu, few epochs, no logger, no progress bars); function-scoped fixtures
point the output folder at ``tmp_path`` and clear Hydra's global state.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from mge.cli.config import CONF_DIR

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Test overrides: a quiet CPU run without loggers.
QUIET_TRAIN = ["logger=none", "trainer.enable_progress_bar=false"]
QUIET_GENERATE = ["logger=none", "progress=false"]  # mge-generate
QUIET = [*QUIET_TRAIN, "progress=false"]  # mge (train + generate)


def compose_config(config_name: str, overrides: list[str], output_dir: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` as Hydra would, with the run folder at ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=CONF_DIR):
        cfg = compose(config_name=config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.root_dir = str(REPO_ROOT)
        cfg.paths.output_dir = str(output_dir)
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    return cfg


@pytest.fixture(autouse=True)
def _clear_hydra():
    yield
    GlobalHydra.instance().clear()


@pytest.fixture(autouse=True)
def _restore_rng_state():
    """Tests may seed torch; restore its RNG so test order never matters."""
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


@pytest.fixture(scope="session")
def digits_seed_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits_cnn seed trained for a few epochs by the real ``train`` function (about 10 s)."""
    from mge.cli.train import train

    out = tmp_path_factory.mktemp("digits_seed")
    cfg = compose_config(
        "train",
        [*QUIET_TRAIN, "trainer.max_epochs=8", "callbacks=none"],
        out,
    )
    train(cfg)
    GlobalHydra.instance().clear()
    return out


@pytest.fixture
def no_cifar_md5(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept fake CIFAR-10 batches, whose md5 sums cannot match the official ones.

    torchvision checks the batches through ``CIFAR10._check_integrity`` and the meta file through
    ``torchvision.datasets.cifar.check_integrity``; both are patched, nothing else.
    """
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args, **kwargs: True)


@pytest.fixture
def shared_data() -> Path:
    """The real MNIST/FashionMNIST folder beside the checkout; skips where it is absent."""
    if not (SHARED_DATA / "MNIST" / "raw").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (only present beside the dev/CI checkout)")
    return SHARED_DATA
