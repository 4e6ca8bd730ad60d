"""Real digits runs for the baseline and evaluation stages: an MGE pool, independent seeds, a snapshot run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from mge.cli.config import write_metrics
from mge.cli.generate import generate
from mge.cli.train import train
from tests.helpers import QUIET_GENERATE, QUIET_TRAIN, compose_config

SMALL_GENERATE = [*QUIET_GENERATE, "n=6", "generator.batch_size=16", "generator.max_rounds=10"]
SMALL_GENERATE += ["time_probe_steps=1"]
SHORT_TRAIN = [*QUIET_TRAIN, "trainer.max_epochs=2", "+trainer.limit_train_batches=4"]


@pytest.fixture(scope="package", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: on the 2 shared cores of the dev box, more threads ran many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="package")
def mge_run(tmp_path_factory: pytest.TempPathFactory, digits_seed_dir: Path) -> Path:
    """An mge-generate run folder (pool/, metrics.json, members.csv) of 6 members from the digits seed."""
    out = tmp_path_factory.mktemp("mge_run")
    report = generate(compose_config("generate", [*SMALL_GENERATE, f"seed_model={digits_seed_dir}"], out))
    write_metrics({"generate": report.to_dict()}, out)
    return out


def train_run(out: Path, overrides: list[str]) -> Path:
    """An mge-train run folder, with the metrics.json its entry point writes."""
    report = train(compose_config("train", [*SHORT_TRAIN, *overrides], out))
    write_metrics({"train": report.to_dict()}, out)
    return out


@pytest.fixture(scope="package")
def independent_runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two short digits trainings with seeds 1 and 2 (the recipe of the seed, fewer steps)."""
    root = tmp_path_factory.mktemp("independent")
    return [train_run(root / f"seed{s}", ["callbacks=none", f"seed={s}"]) for s in (1, 2)]


@pytest.fixture(scope="package")
def snapshot_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short digits training with warm restarts every epoch and a snapshot at each cycle's end."""
    out = tmp_path_factory.mktemp("snapshot_run")
    return train_run(out, ["callbacks=snapshots", "optim.scheduler=cosine_restarts", "optim.cycle_epochs=1", "seed=3"])
