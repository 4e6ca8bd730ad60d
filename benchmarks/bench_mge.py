#!/usr/bin/env python
"""MGE's performance benchmark: what a generated model costs next to training one.

One command measures, on the current device and in one run (spec section 6, "time"):

1. training one LeNet-5 seed on MNIST-sized data (the real ``SeedClassifier`` and a Lightning
   ``Trainer``) for a fixed number of epochs; "one seed training" is the MNIST recipe's
   ``trainer.max_epochs`` (``conf/dataset/mnist.yaml``) times the measured seconds per epoch;
2. generating and discriminating N models (``LatentSampler`` + ``Discriminator`` + ``generate``
   streaming into a ``PoolWriter``) for N = 10, 100, 1000 LeNet-5 models and for an untrained
   ResNet-18 (CIFAR stem, synthetic 32x32 data);
3. evaluating a pool of N models on one fixed test set, ``predict_batched`` against the
   ``predict_one_by_one`` loop;

each case in a fresh ``spawn`` subprocess, so that its peak RSS (``ru_maxrss``) is its own; the
RSS right after setup is recorded too, so that growth with N is visible. The JSON written to
``benchmarks/results/<device>.json`` holds the machine, every measurement and the three targets
of the issue with their ratios. See ``benchmarks/README.md`` for what each figure means.

Usage::

    python benchmarks/bench_mge.py            # full run (< 10 min on 2 CPU cores)
    python benchmarks/bench_mge.py --quick    # a smoke run of a few seconds per case
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this file lives in, whatever copy of mge is installed (spawned
# children inherit sys.path).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MNIST_RECIPE = REPO_ROOT / "conf" / "dataset" / "mnist.yaml"

# The targets, as ratios measured in the same run.
TARGET_TIME_RATIO = 0.001  # seconds per accepted model / one seed training
TARGET_BATCHED_SPEEDUP = 5.0  # loop seconds / batched seconds, N >= 100 LeNet-5, CPU
TARGET_MEMORY_RATIO = 2.0  # memory generating 1000 models / memory generating 100


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run (``FULL`` or ``QUICK``)."""

    train_epochs: int = 1  # epochs actually trained; the recipe's epochs are extrapolated from them
    train_limit_batches: int | None = None  # cap on training batches per epoch (quick runs only)
    synthetic_train: int = 60_000  # MNIST-sized synthetic training set, when MNIST is absent
    synthetic_test: int = 10_000
    discriminator_size: int | None = None  # held-out discriminator split; None: the MNIST recipe's
    gen_ns: tuple[int, ...] = (10, 100, 1000)  # LeNet-5 pool sizes generated
    gen_batch: int = 128  # LeNet-5 candidates per round (GeneratorSettings' default)
    eval_ns: tuple[int, ...] = (10, 100, 1000)  # LeNet-5 pool sizes evaluated
    eval_examples: int = 10_000  # the fixed test set (MNIST's test split)
    batched_max_models: int = 128  # batched evaluation is timed on at most this many models (2 chunks)
    loop_max_models: int = 25  # the loop is timed on at most this many models
    resnet_base_channels: int = 64  # 64 is ResNet-18 (11.2M parameters)
    resnet_gen_ns: tuple[int, ...] = (1, 4)  # a ResNet-18 candidate costs seconds on 2 cores
    resnet_gen_batch: int = 4  # candidates per round: 4 ResNet-18s are 180 MB of float32
    resnet_disc_examples: int = 4  # a small synthetic discriminator split keeps ResNet-18 in budget
    resnet_eval_n: int = 4
    resnet_eval_examples: int = 16
    resnet_loop_max_models: int = 4
    matmul_size: int = 2048  # square fp32 matrix product timed as the device's arithmetic ceiling


FULL = Plan()
QUICK = Plan(
    train_limit_batches=8,
    synthetic_train=1_500,
    synthetic_test=300,
    discriminator_size=200,
    gen_ns=(4, 8),
    gen_batch=16,
    eval_ns=(4, 8),
    eval_examples=300,
    batched_max_models=6,
    loop_max_models=4,
    resnet_base_channels=8,  # a 175k-parameter ResNet-18 layout: exercises the code, fast
    matmul_size=256,
    resnet_gen_ns=(1, 2),
    resnet_gen_batch=2,
    resnet_disc_examples=2,
    resnet_eval_n=2,
    resnet_eval_examples=2,
    resnet_loop_max_models=1,
)


# --------------------------------------------------------------------------- measurement helpers


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux ``/proc``; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return peak_rss_mb()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class Case:
    """What a case function gets: its device and a place to note the post-setup memory."""

    def __init__(self, device: str) -> None:
        import torch

        self.device = torch.device(device)
        self.setup_rss_mb: float | None = None
        self.setup_peak_rss_mb: float | None = None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def setup_done(self) -> None:
        """Call once the case's inputs are loaded and warmed up, right before the timed part."""
        self.sync()
        self.setup_rss_mb = rss_mb()
        self.setup_peak_rss_mb = peak_rss_mb()
        if self.device.type == "cuda":
            import torch

            self.setup_cuda_mb = torch.cuda.memory_allocated(self.device) / 2**20

    def sync(self) -> None:
        if self.device.type == "cuda":
            import torch

            torch.cuda.synchronize(self.device)

    def timed(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        """``(fn(), seconds)``, synchronising the GPU on both sides."""
        self.sync()
        start = time.perf_counter()
        out = fn()
        self.sync()
        return out, time.perf_counter() - start


def _measure(case_name: str, kwargs: dict[str, Any], device: str) -> dict[str, Any]:
    """Run one case in this process and add its memory figures."""
    import torch

    case = Case(device)
    figures = CASES[case_name](case, **kwargs)
    peak = peak_rss_mb()
    figures["memory"] = {
        "rss_after_setup_mb": case.setup_rss_mb,
        "peak_rss_mb": peak,
        "peak_rss_increase_mb": None if case.setup_rss_mb is None else peak - case.setup_rss_mb,
    }
    if case.device.type == "cuda":
        figures["memory"]["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(case.device) / 2**20
        figures["memory"]["cuda_after_setup_mb"] = getattr(case, "setup_cuda_mb", None)
    figures["torch_threads"] = torch.get_num_threads()
    return figures


def _child(case_name: str, kwargs: dict[str, Any], device: str, conn: Any) -> None:
    """Subprocess entry point: run one case and send back its figures."""
    try:
        conn.send(("ok", _measure(case_name, kwargs, device)))
    except BaseException:  # report any failure to the parent, which stops the run
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


# Run every case in a fresh spawned interpreter (the full run) or in this one (--quick).
ISOLATE = True


def run_case(case_name: str, device: str, tag: str = "", **kwargs: Any) -> dict[str, Any]:
    """Run ``CASES[case_name]``, in a fresh spawned interpreter when ``ISOLATE``, and return its figures."""
    start = time.perf_counter()
    if not ISOLATE:
        payload = _measure(case_name, kwargs, device)
    else:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(case_name, kwargs, device, child), name=f"bench-{case_name}")
        proc.start()
        child.close()
        try:
            status, payload = parent.recv()
        except EOFError as err:
            proc.join()
            raise RuntimeError(
                f"benchmark case {case_name} {tag} died (exit code {proc.exitcode}), e.g. out of memory"
            ) from err
        proc.join()
        if status != "ok":
            raise RuntimeError(f"benchmark case {case_name} {tag} failed:\n{payload}")
    payload["isolated"] = ISOLATE
    payload["process_wall_seconds"] = time.perf_counter() - start  # with interpreter start-up when isolated
    print(f"  {case_name} {tag}: {payload['process_wall_seconds']:.1f} s", flush=True)
    return payload


# --------------------------------------------------------------------------- data


def mnist_recipe() -> dict[str, Any]:
    """The MNIST seed recipe of ``conf/dataset/mnist.yaml`` (data, optim, trainer.max_epochs)."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(MNIST_RECIPE)
    return {
        "data": OmegaConf.to_container(cfg.data),
        "optim": OmegaConf.to_container(cfg.optim),
        "max_epochs": int(cfg.trainer.max_epochs),
    }


def synthetic_mnist(n_train: int, n_test: int, discriminator_size: int, batch_size: int, eval_batch_size: int):
    """MNIST-shaped random tensors (N, 1, 28, 28) with random labels, split like the real datamodule."""
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_test, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (n_train + n_test,), generator=g)
    disc, train, test = (slice(0, discriminator_size), slice(discriminator_size, n_train), slice(n_train, None))

    class SyntheticMNIST(L.LightningDataModule):
        def train_dataloader(self) -> DataLoader:
            return DataLoader(TensorDataset(x[train], y[train]), batch_size=batch_size, shuffle=True)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(TensorDataset(x[disc], y[disc]), batch_size=eval_batch_size)

        def split_tensors(self, split: str) -> tuple[Any, Any]:
            part = disc if split == "discriminator" else test
            return x[part], y[part]

    return SyntheticMNIST()


# --------------------------------------------------------------------------- the cases


def case_train_seed(case: Case, *, workdir: str, data_root: str | None, plan: dict[str, Any]) -> dict[str, Any]:
    """Train LeNet-5 for ``plan.train_epochs`` epochs; save the seed and the evaluation tensors."""
    import lightning as L
    import torch
    from safetensors.torch import save_file

    from mge.models.lightning_module import SeedClassifier
    from mge.pool import SeedModel, save_seed

    p = Plan(**plan)
    recipe = mnist_recipe()
    data = recipe["data"]
    disc_size = p.discriminator_size or data["discriminator_size"]
    if data_root is not None:
        from mge.data import build_datamodule

        dm = build_datamodule(
            "mnist",
            root=data_root,
            download=False,
            discriminator_size=disc_size,
            batch_size=data["batch_size"],
            eval_batch_size=data["eval_batch_size"],
            split_seed=data["split_seed"],
        )
        dm.setup("fit")
        source = f"MNIST from {data_root}"
    else:
        dm = synthetic_mnist(
            p.synthetic_train, p.synthetic_test, disc_size, data["batch_size"], data["eval_batch_size"]
        )
        source = (
            f"synthetic MNIST-sized tensors ({p.synthetic_train} train incl. discriminator split, "
            f"{p.synthetic_test} test)"
        )

    torch.manual_seed(0)
    module = SeedClassifier(arch="lenet5", num_classes=10, in_channels=1, image_size=28, **recipe["optim"])
    epoch_seconds: list[float] = []

    class EpochTimer(L.Callback):
        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            case.sync()
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            case.sync()  # validation on the discriminator split has run by now, as in mge-train
            epoch_seconds.append(time.perf_counter() - self.start)

    trainer = L.Trainer(
        accelerator="gpu" if case.device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=p.train_epochs,
        limit_train_batches=p.train_limit_batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[EpochTimer()],
    )
    case.setup_done()
    _, fit_seconds = case.timed(lambda: trainer.fit(module, datamodule=dm))

    model = module.model.eval().cpu()
    x_test, y_test = dm.split_tensors("test")
    x_disc, y_disc = dm.split_tensors("discriminator")
    with torch.no_grad():
        test_acc = torch.cat([model(x).argmax(-1) for x in x_test.split(1000)]).eq(y_test).float().mean().item()
    seed = SeedModel(
        arch="lenet5",
        arch_kwargs={},
        num_classes=10,
        in_channels=1,
        image_size=28,
        state_dict=model.state_dict(),
        meta={"dataset": "mnist", "data_source": source, "test_accuracy": test_acc},
    )
    save_seed(seed, Path(workdir) / "lenet5_seed.safetensors")
    save_file(
        {
            "x_disc": x_disc.contiguous(),
            "y_disc": y_disc.contiguous(),
            "x_test": x_test[: p.eval_examples].contiguous(),
            "y_test": y_test[: p.eval_examples].contiguous(),
        },
        str(Path(workdir) / "mnist_tensors.safetensors"),
    )

    per_epoch = sum(epoch_seconds) / len(epoch_seconds)
    overhead = fit_seconds - sum(epoch_seconds)
    return {
        "data": source,
        "synthetic": data_root is None,
        "epochs_trained": len(epoch_seconds),
        "train_batches_per_epoch": trainer.num_training_batches,
        "limited_batches": p.train_limit_batches is not None,
        "batch_size": data["batch_size"],
        "discriminator_size": disc_size,
        "epoch_seconds": epoch_seconds,
        "seconds_per_epoch": per_epoch,
        "fit_seconds": fit_seconds,
        "fit_overhead_seconds": overhead,
        "recipe_max_epochs": recipe["max_epochs"],
        "one_seed_training_seconds": overhead + recipe["max_epochs"] * per_epoch,
        "definition": (
            "one seed training = fit overhead (setup, sanity check) + trainer.max_epochs of "
            "conf/dataset/mnist.yaml x measured seconds per epoch (train + validation on the "
            "discriminator split); the recipe's epochs are extrapolated from the epochs trained"
        ),
        "seed_test_accuracy": test_acc,
        "param_count": sum(t.numel() for t in model.parameters()),
    }


def _seed_and_data(arch: str, workdir: Path, plan: Plan) -> tuple[Any, Any, Any, Any, Any, str]:
    """The seed (LeNet-5 trained by ``train_seed``, or an untrained ResNet-18) and its data."""
    import torch
    from safetensors.torch import load_file

    from mge.models import build_model
    from mge.pool import SeedModel, load_seed

    if arch == "lenet5":
        seed = load_seed(workdir / "lenet5_seed.safetensors")
        t = load_file(str(workdir / "mnist_tensors.safetensors"))
        return seed, t["x_disc"], t["y_disc"], t["x_test"], t["y_test"], seed.meta["data_source"]
    torch.manual_seed(0)
    kwargs = {} if plan.resnet_base_channels == 64 else {"base_channels": plan.resnet_base_channels}
    model = build_model("resnet18", num_classes=10, in_channels=3, image_size=32, **kwargs)
    # A fresh BatchNorm's scale (ones) and shift (zeros) are constant tensors, and the
    # discriminator's distribution test divides by the seed tensor's std clamped to 1e-8, so any
    # change to them is rejected. Spread them as a trained network's are; everything else stays
    # at its initialisation.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
    seed = SeedModel(
        arch="resnet18",
        arch_kwargs=kwargs,
        num_classes=10,
        in_channels=3,
        image_size=32,
        state_dict=model.state_dict(),
        meta={"note": RESNET_SEED_NOTE},
    )
    g = torch.Generator().manual_seed(1)
    n = max(plan.resnet_disc_examples, plan.resnet_eval_examples)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return seed, x[: plan.resnet_disc_examples], y[: plan.resnet_disc_examples], x, y, "synthetic 3x32x32"


RESNET_SEED_NOTE = (
    "untrained ResNet-18 (CIFAR stem, kaiming init) with BatchNorm scales ~ N(1, 0.1) and shifts "
    "~ N(0, 0.1); synthetic 3x32x32 inputs with random labels"
)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def case_generate(case: Case, *, arch: str, n: int, workdir: str, plan: dict[str, Any], keep: bool) -> dict[str, Any]:
    """Generate ``n`` accepted models into a pool folder, as ``mge-generate`` does."""
    import torch

    from mge.discriminator import Discriminator, DiscriminatorSettings
    from mge.generator import GeneratorSettings, LatentSampler, generate, select_targets, settings_dict
    from mge.latent import LatentCodec
    from mge.pool import PoolWriter

    p = Plan(**plan)
    work = Path(workdir)
    seed, x_disc, y_disc, _, _, source = _seed_and_data(arch, work, p)
    batch = p.gen_batch if arch == "lenet5" else p.resnet_gen_batch
    settings = GeneratorSettings(n_models=n, batch_size=batch)
    disc_settings = DiscriminatorSettings()
    model = seed.build().to(case.device)
    targets = select_targets(model, settings.include, settings.exclude)
    seed_targets = {k: seed.state_dict[k].to(case.device) for k in targets}
    sampler = LatentSampler(seed_targets, LatentCodec(settings.granularity), zero_mean=settings.zero_mean)  # type: ignore[arg-type]
    discriminator = Discriminator(model, seed_targets, x_disc.to(case.device), y_disc.to(case.device), disc_settings)
    # warm-up: DCT matrices, keep masks of the first threshold, one scoring pass
    warm = sampler.sample(
        2, threshold=settings.threshold, alpha=settings.alpha, generator=torch.Generator().manual_seed(1)
    )
    discriminator.score({k: v.to(case.device) for k, v in warm.items()})
    del warm
    pool_dir = work / f"pool_{arch}_{n}"
    shutil.rmtree(pool_dir, ignore_errors=True)
    writer = PoolWriter(
        pool_dir,
        seed,
        targets,
        config={"generator": settings_dict(settings), "discriminator": asdict(disc_settings)},
        seed_reference={"benchmark": arch, "data": source},
    )
    case.setup_done()
    rss_per_round: list[float] = []
    result, seconds = case.timed(
        lambda: generate(
            sampler,
            discriminator,
            writer,
            settings,
            rng_seed=0,
            on_round=lambda _: rss_per_round.append(rss_mb()),
            progress=False,
        )
    )
    pool = writer.finish({"accepted": result.accepted, "candidates": result.candidates})
    figures = {
        "arch": arch,
        "n_requested": n,
        "data": source,
        "discriminator_examples": int(x_disc.shape[0]),
        "generator_batch_size": batch,
        "accepted": result.accepted,
        "candidates": result.candidates,
        "passed": result.passed,
        "rounds": len(result.rounds),
        "acceptance_rate": result.acceptance_rate,
        "final_threshold": result.final_threshold,
        "seed_discriminator_accuracy": discriminator.seed_accuracy,
        "generation_seconds": result.generation_seconds,
        "discriminator_seconds": result.discriminator_seconds,
        "seconds_per_accepted": result.seconds_per_accepted,
        "seconds_per_candidate": (result.generation_seconds + result.discriminator_seconds) / max(result.candidates, 1),
        "total_seconds": seconds,  # generate() with disk writes, hashes and manifests
        "total_seconds_per_accepted": seconds / result.accepted if result.accepted else None,
        "pool_bytes": _dir_bytes(pool_dir),
        "rss_per_round_mb": rss_per_round,
        "params_per_model": sum(t.numel() for t in seed_targets.values()),
    }
    del pool
    if not keep:
        shutil.rmtree(pool_dir, ignore_errors=True)
    return figures


def case_evaluate(case: Case, *, arch: str, n: int, method: str, workdir: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Predict a pool of ``n`` models on the fixed test set, batched or one model at a time."""
    import torch

    from mge.discriminator import DiscriminatorSettings
    from mge.evaluation import accuracy, predict_batched, predict_one_by_one
    from mge.pool import Pool

    p = Plan(**plan)
    work = Path(workdir)
    seed, _, _, x_test, y_test, source = _seed_and_data(arch, work, p)
    if arch == "lenet5":
        pool = Pool.load(work / f"pool_lenet5_{max(p.gen_ns)}", verify=False)
        members = "generated pool members"
        loop_cap = p.loop_max_models
    else:
        pool = Pool.load(work / f"pool_resnet18_{max(p.resnet_gen_ns)}", verify=False)
        members = "generated pool members (untrained seed)"
        x_test, y_test = x_test[: p.resnet_eval_examples], y_test[: p.resnet_eval_examples]
        loop_cap = p.resnet_loop_max_models
    if len(pool) == 0:
        raise RuntimeError(f"the {arch} pool is empty: generation accepted no model, so there is nothing to evaluate")
    if len(pool) < n:
        members += f", cycled: the pool holds {len(pool)}"
    measured = min(n, p.batched_max_models if method == "batched" else loop_cap)
    index = [i % len(pool) for i in range(measured)]
    params = {k: v.to(case.device) for k, v in pool.parameters(index).items()}
    del pool
    model = seed.build().to(case.device)
    x, y = x_test.to(case.device), y_test.to(case.device)
    settings = DiscriminatorSettings()  # evaluate_pool's defaults: 1000 examples x 64 models per pass
    one = {k: v[:1] for k, v in params.items()}
    if method == "batched":
        predict_batched(model, {k: v[:2] for k, v in params.items()}, x[:100])  # warm-up

        def run() -> Any:
            return predict_batched(
                model, params, x, batch_size=settings.eval_batch_size, models_per_chunk=settings.models_per_chunk
            )

    else:
        predict_one_by_one(model, one, x[: settings.eval_batch_size])  # warm-up
        run = lambda: predict_one_by_one(model, params, x, batch_size=settings.eval_batch_size)  # noqa: E731
    case.setup_done()
    preds, seconds = case.timed(run)
    torch.save(preds.to(torch.uint8).cpu(), work / f"preds_{arch}_{n}_{method}.pt")
    acc = accuracy(preds, y)
    return {
        "arch": arch,
        "method": method,
        "n_models": n,
        "models_timed": measured,
        "extrapolated": measured < n,
        "examples": int(x.shape[0]),
        "data": source,
        "members": members,
        "seconds_measured": seconds,
        "seconds": seconds * n / measured,
        "seconds_per_model": seconds / measured,
        "mean_accuracy": acc.mean().item(),
    }


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "train_seed": case_train_seed,
    "generate": case_generate,
    "evaluate": case_evaluate,
}


# --------------------------------------------------------------------------- the run


def machine(device: str) -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "cuda": torch.version.cuda if device == "cuda" else None,
    }
    return info


def matmul_peak_gflops(device: str, size: int) -> float:
    """Best of 3 timings of a square fp32 matrix product: the arithmetic ceiling of this device."""
    import torch

    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    repeats = max(2, int(2e10 / (2 * size**3)))  # ~20 GFLOP per timing
    a @ b
    best = 0.0
    for _ in range(3):
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
        best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9)
    return best


def code_version() -> dict[str, Any]:
    """Which mge was measured: its folder and the checkout's commit (plus whether it was modified)."""
    import subprocess

    import mge

    info: dict[str, Any] = {"mge_path": str(Path(mge.__file__).resolve().parent)}
    try:
        git = ["git", "-C", str(REPO_ROOT)]
        info["commit"] = subprocess.run(
            [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "mge"], capture_output=True, text=True, check=True
        ).stdout
        info["mge_modified"] = bool(dirty.strip())
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def targets(results: dict[str, Any], device: str) -> dict[str, Any]:
    """The issue's three targets from the measurements, with their ratios and whether each is met."""
    seed_seconds = results["train_seed"]["one_seed_training_seconds"]
    gen = {r["n_requested"]: r for r in results["generate"]["lenet5"]}
    n_big = max(gen)
    time_ratio = _ratio(gen[n_big]["seconds_per_accepted"], seed_seconds)
    time_ratio_total = _ratio(gen[n_big]["total_seconds_per_accepted"], seed_seconds)

    speedups = {str(row["n_models"]): row["speedup"] for row in results["evaluate"]["lenet5"] if row["n_models"] >= 100}
    if not speedups:  # quick runs: the largest N stands in for N >= 100
        last = results["evaluate"]["lenet5"][-1]
        speedups = {str(last["n_models"]): last["speedup"]}
    worst = min(speedups.values())

    ns = sorted(gen)
    big, small = gen[ns[-1]]["memory"], gen[ns[-2]]["memory"] if len(ns) > 1 else gen[ns[-1]]["memory"]
    raw = _ratio(big["peak_rss_mb"], small["peak_rss_mb"])
    increase = _ratio(big["peak_rss_increase_mb"], small["peak_rss_increase_mb"])
    return {
        "time_per_accepted_model_vs_seed_training": {
            "target": f"<= {TARGET_TIME_RATIO:.1%}",
            "n_models": n_big,
            "ratio": time_ratio,
            "percent": None if time_ratio is None else 100 * time_ratio,
            "met": time_ratio is not None and time_ratio <= TARGET_TIME_RATIO,
            "ratio_with_disk_writes": time_ratio_total,
            "met_with_disk_writes": time_ratio_total is not None and time_ratio_total <= TARGET_TIME_RATIO,
        },
        "batched_vs_loop_speedup": {
            "target": f">= {TARGET_BATCHED_SPEEDUP:g}x for N >= 100 LeNet-5 models on the CPU",
            "speedup_by_n": speedups,
            "worst": worst,
            "met": worst >= TARGET_BATCHED_SPEEDUP,
            "applies": device == "cpu",
        },
        "generation_memory_1000_vs_100": {
            "target": f"<= {TARGET_MEMORY_RATIO:g}x",
            "n_models": [ns[-2] if len(ns) > 1 else ns[-1], ns[-1]],
            "peak_rss_ratio": raw,
            "peak_rss_increase_ratio": increase,
            "met": raw is not None and raw <= TARGET_MEMORY_RATIO,
            "met_on_increase": increase is not None and increase <= TARGET_MEMORY_RATIO,
        },
    }


def evaluation_rows(arch: str, ns: list[int], device: str, workdir: Path, plan: Plan) -> list[dict[str, Any]]:
    """Batched and loop evaluation of each pool size, each in its own process; speedup and agreement."""
    import torch

    rows = []
    for n in ns:
        common = {"arch": arch, "n": n, "workdir": str(workdir), "plan": asdict(plan)}
        batched = run_case("evaluate", device, method="batched", tag=f"{arch} N={n} batched", **common)
        loop = run_case("evaluate", device, method="loop", tag=f"{arch} N={n} loop", **common)
        b = torch.load(workdir / f"preds_{arch}_{n}_batched.pt")
        lp = torch.load(workdir / f"preds_{arch}_{n}_loop.pt")
        rows.append(
            {
                "n_models": n,
                "examples": batched["examples"],
                "batched": batched,
                "loop": loop,
                "speedup": loop["seconds"] / batched["seconds"],
                "loop_extrapolated": loop["extrapolated"],
                "prediction_mismatches": int((b[: lp.shape[0]] != lp).sum()),
                "predictions_compared": int(lp.numel()),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes and synthetic data: a smoke run, figures meaningless"
    )
    parser.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/<device>.json)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="folder holding MNIST/raw (default ../shared/data); synthetic data where absent",
    )
    parser.add_argument(
        "--synthetic", action="store_true", help="use synthetic MNIST-sized data even if MNIST is present"
    )
    parser.add_argument(
        "--discriminator-size",
        type=int,
        help="discriminator split of the LeNet-5 seed (default: data.discriminator_size of conf/dataset/mnist.yaml)",
    )
    parser.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one fresh process per case (default: yes, except with --quick)",
    )
    args = parser.parse_args(argv)
    global ISOLATE
    ISOLATE = (not args.quick) if args.isolate is None else args.isolate

    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    plan = QUICK if args.quick else FULL
    if args.discriminator_size is not None:
        plan = replace(plan, discriminator_size=args.discriminator_size)
    has_mnist = (args.data_root / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    data_root = None if (args.quick or args.synthetic or not has_mnist) else str(args.data_root)
    out = args.out or RESULTS_DIR / f"{device}{'-quick' if args.quick else ''}.json"

    start = time.perf_counter()
    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"MGE benchmark ({'quick' if args.quick else 'full'}) on {device}; writing {out}", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mge-bench-") as tmp:
        work = Path(tmp)
        common = {"workdir": str(work), "plan": asdict(plan)}
        results["train_seed"] = run_case("train_seed", device, data_root=data_root, tag="lenet5", **common)

        gen_lenet = [
            run_case("generate", device, arch="lenet5", n=n, keep=n == max(plan.gen_ns), tag=f"lenet5 N={n}", **common)
            for n in plan.gen_ns
        ]
        gen_resnet = [
            run_case(
                "generate",
                device,
                arch="resnet18",
                n=n,
                keep=n == max(plan.resnet_gen_ns),
                tag=f"resnet18 N={n}",
                **common,
            )
            for n in plan.resnet_gen_ns
        ]
        results["generate"] = {"lenet5": gen_lenet, "resnet18": gen_resnet}
        results["evaluate"] = {
            "lenet5": evaluation_rows("lenet5", list(plan.eval_ns), device, work, plan),
            "resnet18": evaluation_rows("resnet18", [plan.resnet_eval_n], device, work, plan),
        }

    seed_seconds = results["train_seed"]["one_seed_training_seconds"]
    for rows in results["generate"].values():
        for r in rows:
            r["ratio_to_one_seed_training"] = (
                _ratio(r["seconds_per_accepted"], seed_seconds) if r["arch"] == "lenet5" else None
            )
    resnet = results["generate"]["resnet18"]
    if len(resnet) > 1:
        a, b = resnet[0], resnet[-1]
        results["generate"]["resnet18_memory_growth_mb_per_model"] = (
            b["memory"]["peak_rss_mb"] - a["memory"]["peak_rss_mb"]
        ) / max(b["accepted"] - a["accepted"], 1)

    report = {
        "benchmark": "mge",
        "mode": "quick" if args.quick else "full",
        "command": "python benchmarks/bench_mge.py" + (" --quick" if args.quick else ""),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {**machine(device), "matmul_fp32_gflops": matmul_peak_gflops(device, plan.matmul_size)},
        "code": code_version(),
        "isolated_processes": ISOLATE,
        "load_average": {"before": load_before, "after": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "plan": asdict(plan),
        "targets": targets(results, device),
        "results": results,
        "wall_seconds": time.perf_counter() - start,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    print_summary(report)
    print(f"wrote {out} ({report['wall_seconds']:.0f} s)")
    return report


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)


def print_summary(report: dict[str, Any]) -> None:
    t = report["targets"]
    tr, sp, mem = (
        t["time_per_accepted_model_vs_seed_training"],
        t["batched_vs_loop_speedup"],
        t["generation_memory_1000_vs_100"],
    )
    seed = report["results"]["train_seed"]
    print(
        f"one seed training: {seed['one_seed_training_seconds']:.1f} s "
        f"({seed['recipe_max_epochs']} x {seed['seconds_per_epoch']:.1f} s/epoch "
        f"+ {seed['fit_overhead_seconds']:.1f} s)"
    )
    print(
        f"time per accepted model / seed training: {tr['percent']:.4f}% (target {tr['target']}): "
        f"{'met' if tr['met'] else 'NOT met'}"
    )
    print(f"batched vs loop speedup: {sp['speedup_by_n']} (target {sp['target']}): {'met' if sp['met'] else 'NOT met'}")
    print(
        f"generation memory {mem['n_models']}: peak RSS x{mem['peak_rss_ratio']:.2f}, increase "
        f"x{mem['peak_rss_increase_ratio']:.2f} (target {mem['target']}): {'met' if mem['met'] else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
