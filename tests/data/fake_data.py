"""Writers of tiny datasets in the real on-disk formats, as torchvision's ``inject_fake_data`` does.

Each writer makes every image distinct (its index is encoded in the first pixels) so that tests
can check by content that splits do not overlap, and returns what it wrote so that tests can
compare lengths and labels.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np
from PIL import Image

GTSRB_NUM_CLASSES = 43


def _distinct_images(n: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Random uint8 images whose first two values encode the index, so no two are equal."""
    images = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    flat = images.reshape(n, -1)
    flat[:, 0] = np.arange(n) // 256
    flat[:, 1] = np.arange(n) % 256
    return images


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of MNIST: magic 0x0000 08 <ndim>, big-endian dims, data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def write_fake_mnist(root: Path, folder: str = "MNIST", n_train: int = 60, n_test: int = 20) -> dict[str, np.ndarray]:
    """Write ``<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` (uncompressed).

    Returns:
        The written arrays under keys ``train_images``, ``train_labels``, ``test_images``, ``test_labels``.
    """
    raw = root / folder / "raw"
    written = {}
    for prefix, split, n, seed in (("train", "train", n_train, 0), ("t10k", "test", n_test, 1)):
        images = _distinct_images(n, (28, 28), seed)
        images[:, -1, -1] = 200 + seed * 50  # marks the split, so train and test images never coincide
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        written[f"{split}_images"], written[f"{split}_labels"] = images, labels
    return written


def write_fake_cifar10(root: Path, n_per_batch: int = 12, n_test: int = 10) -> dict[str, list[int]]:
    """Write ``<root>/cifar-10-batches-py/`` as the official python version lays it out.

    Files ``data_batch_1`` .. ``data_batch_5`` and ``test_batch`` are pickled dicts with ``data``
    (uint8, (N, 3072), channel-major rows of 32x32), ``labels``, ``batch_label`` and ``filenames``;
    ``batches.meta`` holds ``label_names``. The official files are Python 2 pickles whose keys
    torchvision reads with ``encoding="latin1"`` as the str keys ``"data"``/``"labels"`` (they are
    ``b"data"`` only under ``encoding="bytes"``); Python 3 can only write str keys that load the same.
    The md5 sums differ from the official ones, so loading needs torchvision's checks patched.

    Returns:
        The labels written, under ``train`` (batches 1..5 in order) and ``test``.
    """
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    labels: dict[str, list[int]] = {"train": [], "test": []}
    images = _distinct_images(5 * n_per_batch + n_test, (3 * 32 * 32,), seed=2)
    batches = [(f"data_batch_{i + 1}", "train", images[i * n_per_batch : (i + 1) * n_per_batch]) for i in range(5)]
    batches.append(("test_batch", "test", images[5 * n_per_batch :]))
    for name, split, data in batches:
        batch_labels = [(len(labels[split]) + j) % 10 for j in range(len(data))]
        labels[split].extend(batch_labels)
        entry = {
            "batch_label": f"fake {name}",
            "labels": batch_labels,
            "data": data,
            "filenames": [f"{name}_{j}.png" for j in range(len(data))],
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f, protocol=2)
    meta = {
        "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
        "num_cases_per_batch": n_per_batch,
        "num_vis": 3072,
    }
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return labels


def write_fake_gtsrb(root: Path, per_class: int = 2, n_test: int = 12) -> dict[str, list[int]]:
    """Write torchvision's GTSRB layout under ``<root>/gtsrb/`` with PPM images of varying size.

    * ``GTSRB/Training/<class:05d>/<track:05d>_<image:05d>.ppm`` for all 43 classes, plus each
      folder's ``GT-<class:05d>.csv`` as in ``GTSRB-Training_fixed.zip`` (torchvision ignores it);
    * ``GTSRB/Final_Test/Images/<i:05d>.ppm`` and ``GT-final_test.csv`` (``;``-separated, header
      ``Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId``).

    Returns:
        Labels under ``train`` (in torchvision's order: by class, then file name) and ``test`` (CSV order).
    """
    base = root / "gtsrb"
    rng = np.random.default_rng(3)
    written: dict[str, list[int]] = {"train": [], "test": []}
    header = "Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"
    for label in range(GTSRB_NUM_CLASSES):
        folder = base / "GTSRB" / "Training" / f"{label:05d}"
        folder.mkdir(parents=True, exist_ok=True)
        rows = [header]
        for i in range(per_class):
            name = f"00000_{i:05d}.ppm"
            size = int(rng.integers(15, 40))
            Image.fromarray(rng.integers(0, 256, (size, size + 3, 3), dtype=np.uint8)).save(folder / name)
            rows.append(f"{name};{size + 3};{size};1;1;{size + 1};{size - 2};{label}")
            written["train"].append(label)
        (folder / f"GT-{label:05d}.csv").write_text("\n".join(rows) + "\n")
    images = base / "GTSRB" / "Final_Test" / "Images"
    images.mkdir(parents=True, exist_ok=True)
    rows = [header]
    for i in range(n_test):
        name, label, size = f"{i:05d}.ppm", (7 * i) % GTSRB_NUM_CLASSES, int(rng.integers(15, 40))
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(images / name)
        rows.append(f"{name};{size};{size};1;1;{size - 1};{size - 1};{label}")
        written["test"].append(label)
    (base / "GT-final_test.csv").write_text("\n".join(rows) + "\n")
    return written


def write_fake_mini_imagenet(
    root: Path,
    classes: dict[str, int] | None = None,
    per_class: int = 10,
    flat: bool = False,
) -> dict[str, list[tuple[str, str]]]:
    """Write Ravi & Larochelle's layout under ``<root>/mini_imagenet/`` with JPEGs of varying size.

    ``{train,val,test}.csv`` have the header ``filename,label`` and rows like
    ``n0000000100000003.jpg,n00000001`` (wnid + 8-digit index, as in the original release).
    Images go to ``images/<wnid>/<filename>``, or flat to ``images/<filename>`` when ``flat``.

    Args:
        root: Where ``mini_imagenet/`` is created.
        classes: Number of classes per split; defaults to 3 train, 2 val, 2 test.
        per_class: Images per class.
        flat: Use the flat image folder of the original release.

    Returns:
        The ``(filename, wnid)`` rows written per split, in CSV order.
    """
    classes = classes or {"train": 3, "val": 2, "test": 2}
    base = root / "mini_imagenet"
    rng = np.random.default_rng(4)
    written: dict[str, list[tuple[str, str]]] = {}
    next_wnid = 1
    for split, n_classes in classes.items():
        rows = []
        # Reverse order in the file checks that labels follow the *sorted* wnids, not file order.
        wnids = [f"n{next_wnid + c:08d}" for c in range(n_classes)][::-1]
        next_wnid += n_classes
        for wnid in wnids:
            folder = base / "images" if flat else base / "images" / wnid
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                filename = f"{wnid}{i + 1:08d}.jpg"
                height, width = int(rng.integers(60, 120)), int(rng.integers(60, 120))
                pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / filename, quality=90)
                rows.append((filename, wnid))
        lines = ["filename,label"] + [f"{f},{w}" for f, w in rows]
        (base / f"{split}.csv").write_text("\n".join(lines) + "\n")
        written[split] = rows
    return written
