#!/usr/bin/env python
"""What MGE costs at CIFAR-10 size: a ResNet-18 seed with the CIFAR-10 recipe against a pool of 100.

``bench_mge.py`` measures the claim on LeNet-5 (MNIST, Fashion-MNIST). This one plans the
CIFAR-10 rows of ``docs/results.md``: it trains the ResNet-18 seed of ``conf/dataset/cifar10.yaml``
through :func:`mge.runs.train_seed` for ``--train-epochs`` epochs (extrapolated to the recipe's
100), then generates a pool of 100 through :func:`mge.runs.generate_pool` with the default
generator and discriminator, scoring it on the test set, all in one process on one device.

The data is a CIFAR-10-sized synthetic set (50,000 + 10,000 images of learnable class templates)
written in the official python-batch layout and read by the real ``CIFAR10DataModule``. Its md5
sums cannot match the official ones, so torchvision's md5 check is switched off in this process
only, for these files we wrote ourselves (as ``tests/conftest.py``'s ``no_cifar_md5`` does). Times
do not depend on the pixels; acceptance rates and accuracies do, so only times are reported.

Usage::

    python benchmarks/bench_cifar10.py --device cuda          # ~3-5 min on one H100
    python benchmarks/bench_cifar10.py --quick                # smoke run on the CPU, figures meaningless
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import pickle
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load_bench_mge() -> Any:
    """``bench_mge.py`` beside this file: its cases, plan and machine record are shared, not copied."""
    spec = importlib.util.spec_from_file_location("bench_mge", HERE / "bench_mge.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {HERE / 'bench_mge.py'}")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_mge"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bench = _load_bench_mge()

RECIPE_EPOCHS = bench.recipe("cifar10")["max_epochs"]
FULL = bench.Plan(train_epochs=2, time_probe_steps=3)
QUICK = bench.Plan(
    train_epochs=1,
    train_limit_batches=2,
    discriminator_size=200,
    generator_batch=4,
    resnet_base_channels=8,  # a 175k-parameter ResNet-18 layout: exercises the code, fast
    time_probe_steps=1,
)
SIZES = {"full": (50_000, 10_000, 100), "quick": (600, 100, 2)}  # train images, test images, pool size


def write_synthetic_cifar10(root: Path, n_train: int, n_test: int, seed: int = 0) -> Path:
    """``<root>/cifar-10-batches-py/`` in the official layout, holding learnable synthetic images.

    Five ``data_batch_*`` files and ``test_batch`` are protocol-2 pickles of dicts with ``data``
    (uint8, (N, 3072), channel-major 32x32 RGB rows) and ``labels``; ``batches.meta`` holds the
    label names. Each class is a smooth random 3x32x32 template; an image is its class's template,
    shifted by up to 3 pixels, scaled and covered in noise.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    templates = np.kron(rng.standard_normal((10, 3, 8, 8)), np.ones((1, 1, 4, 4)))  # (10, 3, 32, 32)
    templates = (templates - templates.min()) / (templates.max() - templates.min()) * 255
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def images(n: int) -> tuple[Any, list[int]]:
        labels = rng.integers(0, 10, n)
        out = np.empty((n, 3, 32, 32), dtype=np.float32)
        for i, (dy, dx) in enumerate(rng.integers(-3, 4, (n, 2))):
            out[i] = np.roll(templates[labels[i]], (int(dy), int(dx)), axis=(1, 2))
        out *= rng.uniform(0.6, 1.0, (n, 1, 1, 1))
        out += rng.normal(0, 60, out.shape)
        return out.clip(0, 255).astype(np.uint8).reshape(n, 3072), labels.tolist()

    per_batch = n_train // 5
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        data, labels = images(n)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": f"synthetic {name}", "labels": labels, "data": data}, f, protocol=2)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": per_batch, "num_vis": 3072}, f, protocol=2)
    return root


def accept_synthetic_batches() -> None:
    """Switch off torchvision's md5 check of the CIFAR-10 files in this process (our own synthetic files)."""
    import torchvision

    torchvision.datasets.CIFAR10._check_integrity = lambda self: True
    torchvision.datasets.cifar.check_integrity = lambda *args, **kwargs: True


def training_figures(train: dict[str, Any]) -> dict[str, Any]:
    """The seed-training figures of a ``train`` case."""
    return {
        "seconds_per_epoch": train["seconds_per_epoch"],
        "epoch_seconds": train["epoch_seconds"],
        "one_seed_training_seconds": train["one_seed_training_seconds"],
        "one_seed_training": train["one_seed_training"],
    }


def write_json(out: Path, report: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str, allow_nan=False) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes on synthetic data: a smoke run")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/<device>-cifar10.json)")
    parser.add_argument("--train-epochs", type=int, help=f"epochs trained, extrapolated to {RECIPE_EPOCHS}")
    args = parser.parse_args(argv)
    import torch

    from mge.discriminator import DiscriminatorSettings

    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    if args.train_epochs is not None and args.train_epochs < 1:
        parser.error(f"--train-epochs must be >= 1, got {args.train_epochs}")
    mode = "quick" if args.quick else "full"
    plan = QUICK if args.quick else FULL
    if args.train_epochs is not None:
        plan = replace(plan, train_epochs=args.train_epochs)
    n_train, n_test, n_pool = SIZES[mode]
    out = args.out or bench.RESULTS_DIR / f"{device}-cifar10{'-quick' if args.quick else ''}.json"
    bench.ISOLATE = False  # one process: the md5 switch-off above must reach the cases
    accept_synthetic_batches()

    start = time.perf_counter()
    base = {
        "benchmark": "mge-cifar10",
        "mode": mode,
        "command": "python benchmarks/bench_cifar10.py"
        + (" --quick" if args.quick else "")
        + f" --device {device} --train-epochs {plan.train_epochs}",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": bench.machine(device),
        "code": bench.code_version(),
        "data": {"synthetic": True, "train_images": n_train, "test_images": n_test, "md5_check": "off (own files)"},
        "plan": asdict(plan),
    }
    print(f"MGE CIFAR-10-sized benchmark ({mode}) on {device}; writing {out}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mge-bench-cifar10-") as tmp:
        work = Path(tmp)
        write_synthetic_cifar10(work / "data", n_train, n_test)
        common = {"workdir": str(work), "plan": asdict(plan)}
        data_root = str(work / "data")
        train = bench.run_case("train", device, dataset="cifar10", data_root=data_root, tag="cifar10", **common)
        report = base | {"figures": training_figures(train), "results": {"train": train, "generate": None}}
        write_json(out, report)  # the training figures survive a generation that fails or runs out of time
        default = {"early_stop": True, "decision_chunk": DiscriminatorSettings().decision_chunk, "evaluate_test": True}
        generate = bench.run_case(
            "generate", device, dataset="cifar10", n=n_pool, seed_path=train["seed_path"], variants=[default],
            tag=f"cifar10 N={n_pool}", **common,
        )  # fmt: skip
    for r in generate["runs"]:
        r["member_sha256"] = len(r["member_sha256"])  # keep the JSON small
    run = generate["runs"][0]
    seed_seconds = train["one_seed_training_seconds"]
    report["figures"] |= {
        "pool_size": run["kept"],
        "candidates": run["candidates"],
        "rounds": run["rounds"],
        "last_threshold": run["last_threshold"],
        "seconds_per_kept": run["seconds_per_kept"],
        "ratio_to_seed_training": bench._ratio(run["seconds_per_kept"], seed_seconds),
        "generate_pool_seconds": run["generate_pool_seconds"],
        "cuda_max_allocated_mb": generate["memory"].get("cuda_max_allocated_mb"),
    }
    report["results"]["generate"] = generate
    report["wall_seconds"] = time.perf_counter() - start
    write_json(out, report)
    f = report["figures"]
    per_kept, ratio = f["seconds_per_kept"], f["ratio_to_seed_training"]
    print(
        f"seed: {f['seconds_per_epoch']:.1f} s per epoch, one training {seed_seconds:.0f} s "
        f"({f['one_seed_training']})\npool of {f['pool_size']}: {f['generate_pool_seconds']:.1f} s in all, "
        + ("no model kept" if per_kept is None else f"{per_kept:.2f} s per kept model = {ratio:.4%} of one training")
        + f" ({f['candidates']} candidates, {f['rounds']} rounds, last t {f['last_threshold']})\n"
        f"wrote {out} ({report['wall_seconds']:.0f} s)"
    )
    return report


if __name__ == "__main__":
    main()
