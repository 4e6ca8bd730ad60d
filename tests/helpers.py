"""Helpers the tests share: composing Hydra configs like the CLIs, small seeds and pools on disk.

Imported by tests as ``from tests.helpers import ...`` (never from conftest, which pytest owns).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from mge.cli.config import CONF_DIR
from mge.models import build_model
from mge.pool import NewMember, PoolWriter, SeedModel

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


def small_seed(arch: str = "digits_cnn", seed: int = 0) -> SeedModel:
    """An untrained seed of a small architecture (8x8 inputs for digits_cnn, 28x28 for lenet5)."""
    size = 28 if arch == "lenet5" else 8
    torch.manual_seed(seed)
    model = build_model(arch, num_classes=10, in_channels=1, image_size=size)
    return SeedModel(arch, {}, 10, 1, size, model.state_dict(), {"dataset": "test"})


def write_pool(
    root: Path, seed: SeedModel, *, rounds: int = 2, per_round: int = 3, config: dict | None = None
) -> PoolWriter:
    """A pool of ``rounds x per_round`` noisy copies of ``seed``'s weights, checkpointed after each round."""
    targets = [k for k in seed.state_dict if k.endswith(("weight", "bias"))]
    writer = PoolWriter.open(
        root, kind="mge", bases={"seed": seed}, targets=targets, config=config or {"n": rounds * per_round}
    )
    g = torch.Generator().manual_seed(1)
    for r in range(rounds):
        params = {
            k: seed.state_dict[k] + 0.01 * torch.randn(per_round, *seed.state_dict[k].shape, generator=g)
            for k in targets
        }
        writer.append(params, [NewMember(operator="mge", parents=("seed",), generation=r)] * per_round)
        writer.checkpoint({"round": r}, {"round": r})
    return writer


def write_noise_pool(
    root: Path, base: SeedModel, n: int, scale: float, *, rng_seed: int, targets: list[str] | None = None
) -> Path:
    """``n`` members around ``base``: relative Gaussian noise on ``targets`` (default: every weight and bias)."""
    names = targets or [k for k in base.state_dict if k.endswith(("weight", "bias"))]
    g = torch.Generator().manual_seed(rng_seed)
    state = base.state_dict
    params = {k: state[k] + scale * state[k].std() * torch.randn(n, *state[k].shape, generator=g) for k in names}
    with PoolWriter.open(root, kind="noise", bases={"seed": base}, targets=names, config={"n": n}) as writer:
        writer.append(params, [NewMember(operator="noise", parents=("seed",))] * n)
        writer.finish({})
    return root


# Few-shot transfer: class-split digits seeds (digits 0-4), an MGE pool and an independent pool.
FEW_SHOT_CLASSES_OVERRIDE = "data.classes=[0,1,2,3,4]"


def class_split_seed(output_dir: Path, seed: int, epochs: int = 3, extra: tuple[str, ...] = ()) -> Path:
    """A digits_cnn seed trained by the real ``train`` on digits 0-4 (a few seconds); returns its run folder."""
    from mge.cli.train import train

    overrides = [*QUIET_TRAIN, "callbacks=none", f"trainer.max_epochs={epochs}", FEW_SHOT_CLASSES_OVERRIDE]
    train(compose_config("train", [*overrides, f"seed={seed}", *extra], output_dir))
    GlobalHydra.instance().clear()
    return output_dir


def mge_pool_of(seed_dir: Path, pool_dir: Path, n: int = 6, max_distance: float = 0.1) -> Path:
    """A small MGE pool of ``seed_dir`` made by the run layer, as mge-generate does.

    ``max_distance``: the discriminator's distribution bound; a seed trained for two steps still has
    BatchNorm weights of nearly zero spread, against which every candidate is far, so raise it there.
    """
    from mge.discriminator import DiscriminatorSettings
    from mge.generator import GeneratorSettings
    from mge.runs import GenerateSettings, generate_pool

    generator = GeneratorSettings(n_models=n, batch_size=16, max_rounds=10, threshold=0.99)
    discriminator = DiscriminatorSettings(max_distribution_distance=max_distance)
    settings = GenerateSettings(generator=generator, discriminator=discriminator, pool_dir=pool_dir, time_probe_steps=1)
    generate_pool(settings, seed_dir)
    return pool_dir


@contextmanager
def one_thread() -> Iterator[None]:
    """One intra-op thread, restored after: on the shared 2-core dev box more threads ran far slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextmanager
def script_module(relative_path: str) -> Iterator[ModuleType]:
    """A script of the repo (``benchmarks/...``, ``experiments/...``) imported as a module, unloaded after.

    It is registered in ``sys.modules`` while loaded, because dataclasses look their module up.
    """
    path = REPO_ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    before = set(sys.modules)
    sys.modules[path.stem] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:  # unload the script and any script it loaded the same way (bench_cifar10 loads bench_mge)
        for name in set(sys.modules) - before:
            file = getattr(sys.modules[name], "__file__", None) or ""
            if Path(file).parent in (REPO_ROOT / "benchmarks", REPO_ROOT / "experiments"):
                del sys.modules[name]
