"""Which classes a few-shot seed trains on, per dataset; the others are its novel classes.

Claim 3 of the paper (MGE.md section 1) is about classes the seed never saw, so a few-shot seed
is trained with ``data.classes`` set to its dataset's entry here, and episodes are drawn from the
held-out classes' test images (:meth:`mge.data.ClassificationDataModule.held_out_tensors`). The
table lives with the protocol, not in the dataset configs, so that ordinary seeds keep all classes.
"""

from __future__ import annotations

# data.classes of a few-shot seed, per dataset; None = all classes of the datamodule.
FEW_SHOT_CLASSES: dict[str, tuple[int, ...] | None] = {
    # Digits 0-4 train, 5-9 held out (the 5/5 split of MGE.md section 6).
    "digits": (0, 1, 2, 3, 4),
    "mnist": (0, 1, 2, 3, 4),
    # T-shirt, trouser, pullover, dress, coat train; sandal, shirt, sneaker, bag, ankle boot held out.
    "fashion_mnist": (0, 1, 2, 3, 4),
    # Airplane, automobile, bird, cat, deer train; dog, frog, horse, ship, truck held out.
    "cifar10": (0, 1, 2, 3, 4),
    # Classes 0-21 train: speed limits, prohibitions, priority, yield, stop, caution and curve
    # warnings. 22-42 (21 classes) held out: the other warnings (bumpy road .. wild animals),
    # mandatory-direction signs and end-of-restriction signs.
    "gtsrb": tuple(range(22)),
    # All 64 train classes of Ravi & Larochelle's split; the 20 classes of test.csv are held out
    # (MiniImageNetDataModule.held_out_tensors), at 84x84.
    "mini_imagenet": None,
}


def few_shot_classes(dataset: str) -> tuple[int, ...] | None:
    """Return the ``data.classes`` that a few-shot seed of ``dataset`` trains on (``None``: all).

    Args:
        dataset: A dataset name of :func:`mge.data.list_datasets`.

    Raises:
        ValueError: ``dataset`` has no few-shot split.
    """
    if dataset not in FEW_SHOT_CLASSES:
        raise ValueError(
            f"Unknown dataset {dataset!r} for few-shot transfer. Valid values are {sorted(FEW_SHOT_CLASSES)}."
        )
    return FEW_SHOT_CLASSES[dataset]
