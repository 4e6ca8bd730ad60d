"""Seeds trained by the real ``train`` on their train classes, then episodes on classes they never saw.

mini-ImageNet runs on a tiny copy in its real on-disk format (tests/data/fake_data.py): a Conv-4
seed trained for two steps on the train.csv classes, episodes on the test.csv classes. Digits runs
a class-split seed (``data.classes``) through ``mge-generate``'s rebuild of its datamodule.
"""

from __future__ import annotations

import math

import torch

from mge.cli.train import train
from mge.fewshot import (
    FewShotSettings,
    ModelGroup,
    few_shot_classes,
    random_init_params,
    run_few_shot,
    stack_state_dicts,
)
from mge.pool import SeedModel, load_seed
from mge.runs import seed_datamodule
from tests.data.fake_data import write_fake_mini_imagenet
from tests.helpers import QUIET_TRAIN, compose_config


def groups_of(seed: SeedModel) -> list[ModelGroup]:
    """Random init, the seed, and a stand-in pool (the seed plus small noise) used as best member and ensemble."""
    arch = {"num_classes": seed.num_classes, "in_channels": seed.in_channels, "image_size": seed.image_size}
    own = stack_state_dicts([seed.state_dict])
    g = torch.Generator().manual_seed(0)
    pool = {k: v + 0.01 * v.std() * torch.randn(3, *v.shape[1:], generator=g) for k, v in own.items()}
    return [
        ModelGroup("random init", random_init_params(seed.arch, **arch, seed=0, **seed.arch_kwargs)),
        ModelGroup("seed", own),
        ModelGroup("pool best", pool, use="best", scores=torch.tensor([0.1, 0.3, 0.2])),
        ModelGroup("pool ensemble", pool, use="ensemble"),
    ]


def test_mini_imagenet_conv4_seed_to_test_class_episodes(tmp_path) -> None:
    root = tmp_path / "data"
    written = write_fake_mini_imagenet(root, classes={"train": 3, "val": 2, "test": 5}, per_class=8)
    cfg = compose_config(
        "train",
        [
            *QUIET_TRAIN,
            "dataset=mini_imagenet",
            f"data.root={root}",
            "data.num_workers=0",
            "data.batch_size=8",
            "data.discriminator_size=4",
            "+model.kwargs.hidden_channels=4",
            "callbacks=none",
            "debug=fast",  # one epoch of two batches
        ],
        tmp_path / "run",
    )
    assert few_shot_classes("mini_imagenet") is None and cfg.data.classes is None  # all train classes
    train(cfg)
    seed = load_seed(tmp_path / "run")
    assert seed.num_classes == 64 and seed.image_size == 84
    datamodule = seed_datamodule(seed, None)  # as mge-generate rebuilds it
    images, labels = datamodule.held_out_tensors("test")  # test.csv's classes
    assert images.shape == (40, 3, 84, 84) and len(written["test"]) == 40
    settings = FewShotSettings(n_way=5, k_shot=1, q_query=5)
    report = run_few_shot(seed.build(), groups_of(seed), images, labels, settings)
    assert report.n_classes == 5 and report.n_images == 40
    assert [g.name for g in report.groups] == ["random init", "seed", "pool best", "pool ensemble"]
    for group in report.groups:
        assert group.episode_accuracy.shape == (600,)
        assert 0.0 <= group.mean <= 1.0 and math.isfinite(group.ci95)
    assert report.groups[2].chosen == 1
    report.plot()


def test_digits_class_split_seed_transfers_to_its_held_out_digits(tmp_path) -> None:
    classes = few_shot_classes("digits")
    overrides = [
        *QUIET_TRAIN,
        "callbacks=none",
        "trainer.max_epochs=2",
        f"data.classes=[{','.join(map(str, classes))}]",
    ]
    train(compose_config("train", overrides, tmp_path))
    seed = load_seed(tmp_path)
    assert seed.num_classes == 5 and seed.meta["data"]["classes"] == list(classes)
    datamodule = seed_datamodule(seed, None)
    assert datamodule.classes == classes and datamodule.num_classes == seed.num_classes
    assert set(datamodule.split_tensors("test")[1].tolist()) == set(range(5))
    images, labels = datamodule.held_out_tensors("test")
    assert set(labels.tolist()) == {5, 6, 7, 8, 9}
    for settings in (FewShotSettings(k_shot=5), FewShotSettings(k_shot=5, n_episodes=100, head="linear_probe")):
        report = run_few_shot(seed.build(), groups_of(seed), images, labels, settings)
        assert report.n_classes == 5
        assert all(0.0 <= g.mean <= 1.0 for g in report.groups)
