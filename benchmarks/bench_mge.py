#!/usr/bin/env python
"""MGE's performance benchmark: what a generated model costs next to training one.

One command measures, on the current device and in one run (spec section 6, "time"):

1. training the MNIST and the Fashion-MNIST LeNet-5 seeds with their recipes
   (``conf/dataset/{mnist,fashion_mnist}.yaml``, seed 0) through :func:`mge.runs.train_seed` and a
   Lightning ``Trainer`` with an epoch timer;
2. generating pools from those seeds through :func:`mge.runs.generate_pool`: Fashion-MNIST N = 100,
   MNIST N = 10, 100, 1000 with the default generator and discriminator; seconds per kept model
   against the seed training of step 1 and against the run layer's own probe (``time_reference``);
3. the discriminator's exact early stopping: the same generations with ``early_stop=False`` and
   with it on at several ``decision_chunk`` values, interleaved, checking that the pools are
   identical member for member;
4. evaluating LeNet-5 pools of N = 10, 100, 1000 (and 4 ResNet-18s) on one fixed test set,
   ``predict_batched`` against the ``predict_one_by_one`` loop, as a fraction of the fp32 matrix
   product peak measured in the same run;
5. peak memory generating 1000 models against 100;

each case in a fresh ``spawn`` subprocess, so that its peak RSS (``ru_maxrss``) is its own. Without
real MNIST / Fashion-MNIST under ``--data-root``, MNIST-sized synthetic datasets are written in the
real IDX format into a temporary folder and read by the real datamodules; the JSON says which.
The JSON written to ``benchmarks/results/<device>.json`` holds the machine, the commit, the load,
every measurement and the targets of the issues with their ratios; ``benchmarks/report.py``
renders it. See ``benchmarks/README.md`` for what each figure means.

Usage::

    python benchmarks/bench_mge.py            # full run (~12 min on 2 CPU cores)
    python benchmarks/bench_mge.py --quick    # a smoke run of well under a minute, figures meaningless
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
# Benchmark the checkout this file lives in, whatever copy of mge is installed (spawned
# children inherit sys.path).
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
DEFAULT_DATA_ROOT = REPO_ROOT.parent / "shared" / "data"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
CONF_DIR = REPO_ROOT / "conf"
DATASETS = ("mnist", "fashion_mnist")
RAW_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}  # torchvision's layout: <root>/<folder>/raw

# The issues' targets, as ratios measured in the same run.
TARGET_TIME_RATIO = 0.001  # seconds per kept model / one seed training
TARGET_PEAK_FRACTION = 0.6  # batched LeNet-5 evaluation, N = 1000: achieved / fp32 matrix product FLOP/s
TARGET_MEMORY_RATIO = 2.0  # peak RSS generating 1000 models / generating 100


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run (``FULL`` or ``QUICK``)."""

    train_epochs: int | None = None  # epochs trained; None: the recipe's (else extrapolated to it)
    train_limit_batches: int | None = None  # cap on training batches per epoch (quick runs only)
    synthetic_train: int = 60_000  # MNIST-sized synthetic sets, where the real ones are absent
    synthetic_test: int = 10_000
    discriminator_size: int | None = None  # None: the recipe's data.discriminator_size
    generator_batch: int | None = None  # candidates per round; None: GeneratorSettings' default (128)
    mnist_ns: tuple[int, ...] = (10, 100, 1000)  # MNIST pools generated with the defaults
    fashion_n: int = 100  # the Fashion-MNIST pool (the acceptance target's)
    early_stop_mnist_n: int = 100  # MNIST pool size of the early-stopping comparison
    decision_chunks: tuple[int, ...] = (100, 250, 500)  # early stopping on, at these chunk sizes
    early_stop_repeats: int = 2  # each variant runs this often, in alternating order
    eval_ns: tuple[int, ...] = (10, 100, 1000)  # LeNet-5 pool sizes evaluated
    eval_examples: int = 10_000  # the fixed test set (the MNIST test split)
    batched_max_models: int = 128  # batched evaluation is timed on at most this many models (2 chunks of 64)
    loop_max_models: int = 25  # the loop is timed on at most this many models
    resnet_base_channels: int = 64  # 64 is ResNet-18 (11.2M parameters); also the CIFAR-10 seed's width
    resnet_eval_n: int = 4
    resnet_eval_examples: int = 16
    resnet_loop_max_models: int = 4
    matmul_size: int = 2048  # square fp32 matrix product timed as the device's arithmetic ceiling
    matmul_gflop: float = 20.0  # work per timing (best of 3)
    time_probe_steps: int = 3  # GenerateSettings.time_probe_steps (the run layer's default)


FULL = Plan()
QUICK = Plan(
    train_epochs=1,
    train_limit_batches=8,
    synthetic_train=1_500,
    synthetic_test=300,
    discriminator_size=200,
    generator_batch=16,
    mnist_ns=(4, 8),
    fashion_n=4,
    early_stop_mnist_n=4,
    decision_chunks=(50,),
    early_stop_repeats=1,
    eval_ns=(4, 8),
    eval_examples=300,
    batched_max_models=6,
    loop_max_models=4,
    resnet_base_channels=8,  # a 175k-parameter ResNet-18 layout: exercises the code, fast
    resnet_eval_n=2,
    resnet_eval_examples=2,
    resnet_loop_max_models=1,
    matmul_size=256,
    matmul_gflop=0.2,
    time_probe_steps=1,
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


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the OS has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


class Case:
    """What a case function gets: its device and a place to note the memory before the timed part."""

    def __init__(self, device: str) -> None:
        import torch

        self.device_name = device
        self.device = torch.device(device)
        self.setup_rss_mb: float | None = None
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def setup_done(self) -> None:
        """Call once the case's inputs are loaded and warmed up, right before the timed part."""
        self.sync()
        self.setup_rss_mb = rss_mb()

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
    """Run one case in this process and add its device, memory and load figures."""
    import torch

    if THREADS is not None:
        torch.set_num_threads(THREADS)
    case = Case(device)
    load_before = load_average()
    figures = CASES[case_name](case, **kwargs)
    peak = peak_rss_mb()
    figures["device"] = device
    figures["memory"] = {
        "rss_before_timed_mb": case.setup_rss_mb,
        "peak_rss_mb": peak,
        "peak_rss_increase_mb": None if case.setup_rss_mb is None else peak - case.setup_rss_mb,
    }
    if case.device.type == "cuda":
        figures["memory"]["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated(case.device) / 2**20
    figures["torch_threads"] = torch.get_num_threads()
    figures["load_average"] = {"before": load_before, "after": load_average()}
    return figures


def _child(case_name: str, kwargs: dict[str, Any], device: str, threads: int | None, conn: Any) -> None:
    """Subprocess entry point: run one case and send back its figures."""
    global THREADS
    THREADS = threads
    try:
        conn.send(("ok", _measure(case_name, kwargs, device)))
    except BaseException:  # report any failure to the parent, which stops the run
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


# Run every case in a fresh spawned interpreter (the full run) or in this one (--quick).
ISOLATE = True
# torch.set_num_threads in every case (--threads); None: torch's default.
THREADS: int | None = None


def run_case(case_name: str, device: str, tag: str = "", **kwargs: Any) -> dict[str, Any]:
    """Run ``CASES[case_name]``, in a fresh spawned interpreter when ``ISOLATE``, and return its figures."""
    start = time.perf_counter()
    if not ISOLATE:
        payload = _measure(case_name, kwargs, device)
    else:
        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(case_name, kwargs, device, THREADS, child), name=f"bench-{case_name}")
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
    print(f"  {case_name} {tag}: {payload['process_wall_seconds']:.1f} s (load {load_average()})", flush=True)
    return payload


# --------------------------------------------------------------------------- data


def recipe(dataset: str) -> dict[str, Any]:
    """A dataset's seed recipe: ``conf/dataset/<dataset>.yaml`` (data, optim, max_epochs) and its model."""
    from omegaconf import OmegaConf

    cfg: Any = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "dataset" / f"{dataset}.yaml"))
    overrides = [d for d in cfg.get("defaults", []) if isinstance(d, dict) and "override /model" in d]
    model_name = str(overrides[0]["override /model"]) if overrides else "lenet5"
    model: Any = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{model_name}.yaml"))
    return {
        "data": cfg["data"],
        "optim": cfg["optim"],
        "max_epochs": int(cfg["trainer"]["max_epochs"]),
        "arch": str(model["arch"]),
        "arch_kwargs": model.get("kwargs") or {},
    }


def _write_idx(path: Path, array: Any) -> None:
    """One uint8 array in the IDX format of the MNIST files: magic (0, 0, 0x08 = ubyte, ndim), big-endian sizes."""
    import numpy as np

    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    path.write_bytes(header + array.tobytes())


def write_synthetic_idx(root: Path, dataset: str, n_train: int, n_test: int) -> Path:
    """An MNIST-shaped dataset in the real on-disk format: ``<root>/<MNIST|FashionMNIST>/raw/*-ubyte``.

    Each class is a smooth random 28x28 template; an image is its class's template, shifted by up
    to 2 pixels, scaled and covered in noise, so that LeNet-5 learns it to ~95-99% like the real
    data (the figures the benchmark reports are times, not accuracies). The real datamodules read
    these files, unchanged.
    """
    import numpy as np

    rng = np.random.default_rng(0 if dataset == "mnist" else 1)
    coarse = rng.standard_normal((10, 7, 7))
    templates = np.kron(coarse, np.ones((4, 4)))  # (10, 28, 28), blocky
    templates = (templates - templates.min()) / (templates.max() - templates.min()) * 255
    raw = root / RAW_FOLDER[dataset] / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        shifts = rng.integers(-2, 3, (n, 2))
        images = np.empty((n, 28, 28), dtype=np.float32)
        for i in range(n):  # 70,000 rolls: ~1 s
            images[i] = np.roll(templates[labels[i]], tuple(shifts[i]), axis=(0, 1))
        images *= rng.uniform(0.6, 1.0, (n, 1, 1))
        images += rng.normal(0, 70, images.shape)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images.clip(0, 255))
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


# --------------------------------------------------------------------------- the cases


def case_matmul(case: Case, *, size: int, gflop: float) -> dict[str, Any]:
    """Best of 5 timings of a square fp32 matrix product: the arithmetic ceiling of this device."""
    import torch

    a, b = (torch.randn(size, size, device=case.device) for _ in range(2))
    repeats = max(2, int(gflop * 1e9 / (2 * size**3)))
    a @ b
    timings = []
    for _ in range(5):
        _, seconds = case.timed(lambda: [a @ b for _ in range(repeats)])
        timings.append(2 * size**3 * repeats / seconds / 1e9)
    return {"size": size, "gflops": max(timings), "gflops_per_timing": timings}


def case_train(case: Case, *, dataset: str, data_root: str, workdir: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Train ``dataset``'s seed with its recipe through ``train_seed``; time every epoch."""
    import lightning as L

    from mge.runs import OptimSettings, TrainSettings, train_seed

    p = Plan(**plan)
    r = recipe(dataset)
    data = {**r["data"], "root": data_root, "download": False}
    if p.discriminator_size is not None:
        data["discriminator_size"] = p.discriminator_size
    epochs = p.train_epochs or r["max_epochs"]
    arch_kwargs = dict(r["arch_kwargs"])
    if r["arch"] == "resnet18" and p.resnet_base_channels != 64:  # a thinner ResNet-18 for quick runs
        arch_kwargs["base_channels"] = p.resnet_base_channels
    epoch_seconds: list[float] = []

    class EpochTimer(L.Callback):
        """Wall-clock of each training epoch, its validation on the discriminator split included."""

        def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            case.sync()
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            case.sync()  # the epoch's validation has run by now, as in mge-train
            epoch_seconds.append(time.perf_counter() - self.start)

    trainer = L.Trainer(
        accelerator="gpu" if case.device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=epochs,
        limit_train_batches=p.train_limit_batches,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=workdir,
        callbacks=[EpochTimer()],
    )
    settings = TrainSettings(
        data=data,
        arch=r["arch"],
        arch_kwargs=arch_kwargs,
        optim=OptimSettings(**r["optim"]),
        seed=0,
        output_dir=Path(workdir) / f"seed_{dataset}",
    )
    case.setup_done()
    report = train_seed(settings, trainer)
    full = epochs == r["max_epochs"] and p.train_limit_batches is None
    per_epoch = statistics.fmean(epoch_seconds)
    overhead = report.train_seconds - sum(epoch_seconds)
    return {
        "dataset": dataset,
        "report": {k: v for k, v in report.to_dict().items() if k != "seed_path"},
        "seed_path": str(report.seed_path),
        "epochs_trained": len(epoch_seconds),
        "recipe_max_epochs": r["max_epochs"],
        "full_recipe": full,
        "train_batches_per_epoch": trainer.num_training_batches,
        "batch_size": data["batch_size"],
        "discriminator_size": data["discriminator_size"],
        "epoch_seconds": epoch_seconds,
        "seconds_per_epoch": per_epoch,
        "fit_seconds": report.train_seconds,
        "fit_overhead_seconds": overhead,
        "one_seed_training_seconds": report.train_seconds if full else overhead + r["max_epochs"] * per_epoch,
        "one_seed_training": (
            "measured: Trainer.fit of the whole recipe (train_seed's train_seconds)"
            if full
            else f"extrapolated: fit overhead + {r['max_epochs']} recipe epochs x the mean of {len(epoch_seconds)} "
            "timed epochs" + (f" of {p.train_limit_batches} batches" if p.train_limit_batches else "")
        ),
        "seed_test_accuracy": report.test_accuracy,
    }


def _append_rss(into: list[float], _round: dict[str, Any]) -> None:
    into.append(rss_mb())


def variant_label(early_stop: bool, decision_chunk: int) -> str:
    return f"chunk {decision_chunk}" if early_stop else "off"


def case_generate(
    case: Case,
    *,
    dataset: str,
    n: int,
    seed_path: str,
    variants: list[dict[str, Any]],
    workdir: str,
    plan: dict[str, Any],
    keep: str | None = None,
) -> dict[str, Any]:
    """``generate_pool`` from ``dataset``'s seed once per variant (discriminator overrides), in the order given.

    Several variants in one process compare the discriminator's early stopping; a single one is
    a clean memory measurement. ``keep``: copy the last pool there for the evaluation cases.
    """
    from dataclasses import replace

    from mge.discriminator import DiscriminatorSettings
    from mge.generator import GeneratorSettings
    from mge.runs import GenerateSettings, generate_pool

    p = Plan(**plan)
    gen = GeneratorSettings(n_models=n)
    if p.generator_batch is not None:
        gen = replace(gen, batch_size=p.generator_batch)
    runs: list[dict[str, Any]] = []
    case.setup_done()
    for i, variant in enumerate(variants):
        disc = DiscriminatorSettings(early_stop=variant["early_stop"], decision_chunk=variant["decision_chunk"])
        pool_dir = Path(workdir) / f"pool_{dataset}_{n}_{i}"
        settings = GenerateSettings(
            generator=gen,
            discriminator=disc,
            seed=0,
            pool_dir=pool_dir,
            device=case.device_name,
            time_probe_steps=p.time_probe_steps,
            evaluate_test=bool(variant.get("evaluate_test", False)),
        )
        rss_per_round: list[float] = []
        on_round = partial(_append_rss, rss_per_round)
        report, seconds = case.timed(partial(generate_pool, settings, seed_path, on_round=on_round))
        m = report.to_dict()
        runs.append(
            {
                "label": variant_label(disc.early_stop, disc.decision_chunk),
                "early_stop": disc.early_stop,
                "decision_chunk": disc.decision_chunk,
                "kept": m["n_kept"],
                "candidates": m["n_candidates"],
                "passed": m["n_passed"],
                "rounds": len(m["rounds"]),
                "acceptance_rate": m["acceptance_rate"],
                "rejected": m["rejected"],
                "examples_scored": m["discriminator_examples_scored"],
                "seed_discriminator_accuracy": m["seed_discriminator_accuracy"],
                "discriminator_accuracy_bound": m["discriminator_accuracy_bound"],
                "last_threshold": m["last_threshold"],
                "generation_seconds": m["generation_seconds"],
                "discriminator_seconds": m["discriminator_seconds"],
                "discriminator_seconds_per_round": [r["discriminator_seconds"] for r in m["rounds"]],
                "seconds_per_kept": m["seconds_per_kept_model"],
                "time_reference": m["time_reference"],
                "probe_ratio": m["time_ratio_per_model"],
                "generate_pool_seconds": seconds,  # data, generation, pool files, probe (and test evaluation)
                "pool_hash": report.pool_hash,
                "member_sha256": [r.sha256 for r in report.pool.records],
                "test": m["test"],
                "evaluated": settings.evaluate_test,
                "rss_per_round_mb": rss_per_round,
            }
        )
        del report
        if keep is not None and i == len(variants) - 1:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.move(pool_dir, keep)
        shutil.rmtree(pool_dir, ignore_errors=True)
    return {"dataset": dataset, "n_requested": n, "generator_batch_size": gen.batch_size, "runs": runs}


def forward_flops(model: Any, example: Any) -> int:
    """Multiply-add FLOPs (2 per multiply-accumulate) of one example through ``model``'s Conv2d and Linear layers."""
    import torch
    from torch import nn

    total = [0]

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        if isinstance(module, nn.Conv2d):
            k = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            total[0] += 2 * output[0].numel() * k
        elif isinstance(module, nn.Linear):
            total[0] += 2 * module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    try:
        with torch.no_grad():
            model.eval()(example[:1])
    finally:
        for h in handles:
            h.remove()
    return total[0]


def _resnet_members(plan: Plan, n: int) -> tuple[Any, dict[str, Any], Any]:
    """An untrained ResNet-18 (BatchNorm spread as a trained one's), ``n`` noisy copies of it, synthetic images."""
    import torch

    from mge.models import build_model

    torch.manual_seed(0)
    kwargs = {} if plan.resnet_base_channels == 64 else {"base_channels": plan.resnet_base_channels}
    model = build_model("resnet18", num_classes=10, in_channels=3, image_size=32, **kwargs)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
                if module.running_var is not None:
                    module.running_var.uniform_(0.5, 1.5)
    g = torch.Generator().manual_seed(1)
    params = {
        k: v.detach().unsqueeze(0) + 0.01 * v.detach().std() * torch.randn(n, *v.shape, generator=g)
        for k, v in model.named_parameters()
    }
    x = torch.randn(plan.resnet_eval_examples, 3, 32, 32, generator=g)
    return model, params, x


def case_evaluate(
    case: Case, *, arch: str, n: int, method: str, workdir: str, pool_dir: str | None, plan: dict[str, Any]
) -> dict[str, Any]:
    """Predict ``n`` models on the fixed test set, batched or one model at a time."""
    import torch
    from safetensors.torch import load_file

    from mge.discriminator import DiscriminatorSettings
    from mge.evaluation import predict_batched, predict_one_by_one
    from mge.pool import Pool

    p = Plan(**plan)
    if arch == "lenet5":
        if pool_dir is None:
            raise ValueError("the LeNet-5 evaluation needs the generated pool")
        pool = Pool.load(pool_dir, verify=False)
        if len(pool) == 0:
            raise RuntimeError("the LeNet-5 pool is empty: generation kept no model, so there is nothing to evaluate")
        members = "generated MNIST pool members" + (f", cycled: the pool holds {len(pool)}" if len(pool) < n else "")
        cap = p.batched_max_models if method == "batched" else p.loop_max_models
        index = [i % len(pool) for i in range(min(n, cap))]
        params = pool.parameters(index)
        model = pool.build()
        test = load_file(str(Path(workdir) / "mnist_test.safetensors"))
        x = test["x"][: p.eval_examples]
        del pool
    else:
        cap = p.batched_max_models if method == "batched" else p.resnet_loop_max_models
        model, params, x = _resnet_members(p, min(n, cap))
        members = "noisy copies of an untrained ResNet-18 (BatchNorm spread as a trained one's), synthetic 3x32x32"
    measured = min(n, cap)
    flops = forward_flops(model, x)
    params = {k: v.to(case.device) for k, v in params.items()}
    model = model.to(case.device)
    x = x.to(case.device)
    settings = DiscriminatorSettings()  # evaluate_pool's defaults: 1000 examples x 64 models per pass
    if method == "batched":
        predict_batched(model, {k: v[:2] for k, v in params.items()}, x[:100])  # warm-up and self-check

        def run() -> Any:
            return predict_batched(
                model, params, x, batch_size=settings.eval_batch_size, models_per_chunk=settings.models_per_chunk
            )

    else:
        predict_one_by_one(model, {k: v[:1] for k, v in params.items()}, x[: settings.eval_batch_size])  # warm-up

        def run() -> Any:
            return predict_one_by_one(model, params, x, batch_size=settings.eval_batch_size)

    case.setup_done()
    preds, seconds = case.timed(run)
    torch.save(preds.to(torch.uint8).cpu(), Path(workdir) / f"preds_{arch}_{n}_{method}.pt")
    return {
        "arch": arch,
        "method": method,
        "n_models": n,
        "models_timed": measured,
        "extrapolated": measured < n,
        "examples": int(x.shape[0]),
        "members": members,
        "flops_per_example_model": flops,
        "seconds_measured": seconds,
        "seconds": seconds * n / measured,
        "seconds_per_model": seconds / measured,
        "gflops": flops * int(x.shape[0]) * measured / seconds / 1e9,
    }


CASES: dict[str, Callable[..., dict[str, Any]]] = {
    "matmul": case_matmul,
    "train": case_train,
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
    return {
        "cpu_model": cpu,
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": THREADS or torch.get_num_threads(),  # what every case ran with
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "cuda": torch.version.cuda if device == "cuda" else None,
    }


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
            [*git, "status", "--porcelain", "mge", "benchmarks/bench_mge.py", "conf"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        info["modified"] = bool(dirty.strip())
    except (OSError, subprocess.CalledProcessError):
        info["commit"] = None
    return info


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _mean(values: list[float | None]) -> float | None:
    clean = [v for v in values if v is not None]
    return statistics.fmean(clean) if clean else None


def early_stop_variants(plan: Plan, default_chunk: int) -> list[dict[str, Any]]:
    """``early_stop=False`` and on at each chunk size (the default's too), repeated in alternating order (ABC, CBA)."""
    chunks = sorted({*plan.decision_chunks, default_chunk})
    base = [{"early_stop": False, "decision_chunk": default_chunk}]
    base += [{"early_stop": True, "decision_chunk": c} for c in chunks]
    order: list[dict[str, Any]] = []
    for r in range(plan.early_stop_repeats):
        order += base if r % 2 == 0 else base[::-1]
    return order


def summarise_generation(case: dict[str, Any], seed_seconds: float, default_chunk: int) -> dict[str, Any]:
    """Per-variant figures of a generation case, the ratios to the seed's training, and the identity check.

    A variant's seconds are the best of its runs (they were interleaved with the other variants'); a
    run that also scored its pool on the test set opened the process (cold caches) and is reported
    apart as ``first_run``, unless it is the only one.

    Raises:
        RuntimeError: two variants kept different members (early stopping must not change a verdict).
    """
    runs = case["runs"]
    hashes = {tuple(r["member_sha256"]) for r in runs}
    if len(hashes) != 1:
        raise RuntimeError(
            f"{case['dataset']} N={case['n_requested']}: the variants kept different members "
            f"({sorted({r['label'] for r in runs})}); early stopping changed a verdict"
        )
    warm = [r for r in runs if not r["evaluated"]] or runs
    variants: dict[str, dict[str, Any]] = {}
    for r in warm:
        variants.setdefault(r["label"], {"early_stop": r["early_stop"], "decision_chunk": r["decision_chunk"]})
        variants[r["label"]].setdefault("_runs", []).append(r)
    for v in variants.values():
        rs = v.pop("_runs")
        v["repeats"] = len(rs)
        v["discriminator_seconds"] = min(r["discriminator_seconds"] for r in rs)
        v["generation_seconds"] = min(r["generation_seconds"] for r in rs)
        v["discriminator_seconds_each"] = [r["discriminator_seconds"] for r in rs]
        v["seconds_per_kept"] = min(r["seconds_per_kept"] for r in rs)
        v["ratio_to_seed_training"] = _ratio(v["seconds_per_kept"], seed_seconds)
        v["probe_ratio"] = _mean([r["probe_ratio"] for r in rs])
        v["probe_seconds"] = _mean([(r["time_reference"] or {}).get("seconds") for r in rs])
        v["examples_scored"] = rs[0]["examples_scored"]
    off = variants.get("off")
    if off is not None:
        for v in variants.values():
            v["discriminator_speedup_vs_off"] = _ratio(off["discriminator_seconds"], v["discriminator_seconds"])
            v["examples_scored_vs_off"] = _ratio(v["examples_scored"], off["examples_scored"])
    first = runs[0]
    headline = variants.get(variant_label(True, default_chunk)) or next(iter(variants.values()))
    return {
        "dataset": case["dataset"],
        "n_requested": case["n_requested"],
        "device": case["device"],
        "kept": first["kept"],
        "candidates": first["candidates"],
        "passed": first["passed"],
        "rounds": first["rounds"],
        "acceptance_rate": first["acceptance_rate"],
        "rejected": first["rejected"],
        "last_threshold": first["last_threshold"],
        "pool_hash": first["pool_hash"],
        "members_identical_across_variants": True,
        "seconds_per_kept": headline["seconds_per_kept"],
        "ratio_to_seed_training": headline["ratio_to_seed_training"],
        "probe_ratio": headline["probe_ratio"],
        "probe_seconds": headline["probe_seconds"],
        "one_seed_training_seconds": seed_seconds,
        "variants": variants,
        "test": next((r["test"] for r in runs if r["test"] is not None), None),
        "first_run": None if warm is runs else {k: v for k, v in runs[0].items() if k != "member_sha256"},
        "memory": case["memory"],
        "rss_per_round_mb": first["rss_per_round_mb"],
        "load_average": case["load_average"],
    }


def evaluation_rows(
    arch: str, ns: list[int], device: str, workdir: Path, pool_dir: Path | None, plan: Plan
) -> list[dict[str, Any]]:
    """Batched and loop evaluation of each pool size, each in its own process; speedup and agreement."""
    import torch

    rows = []
    for n in ns:
        common = {
            "arch": arch,
            "n": n,
            "workdir": str(workdir),
            "pool_dir": None if pool_dir is None else str(pool_dir),
            "plan": asdict(plan),
        }
        batched = run_case("evaluate", device, method="batched", tag=f"{arch} N={n} batched", **common)
        loop = run_case("evaluate", device, method="loop", tag=f"{arch} N={n} loop", **common)
        b = torch.load(workdir / f"preds_{arch}_{n}_batched.pt")
        lp = torch.load(workdir / f"preds_{arch}_{n}_loop.pt")
        compared = min(b.shape[0], lp.shape[0])
        rows.append(
            {
                "n_models": n,
                "examples": batched["examples"],
                "batched": batched,
                "loop": loop,
                "speedup": loop["seconds"] / batched["seconds"],
                "prediction_mismatches": int((b[:compared] != lp[:compared]).sum()),
                "predictions_compared": int(lp[:compared].numel()),
            }
        )
    return rows


def prepare_data(args: argparse.Namespace, plan: Plan, tmp: Path) -> dict[str, dict[str, Any]]:
    """Where each dataset is read from: the real IDX files, or synthetic ones written in their format."""
    sources = {}
    for dataset in DATASETS:
        raw = args.data_root / RAW_FOLDER[dataset] / "raw"
        real = (raw / "train-images-idx3-ubyte").is_file() and not (args.quick or args.synthetic)
        if real:
            sources[dataset] = {"root": str(args.data_root), "synthetic": False, "source": f"real {dataset} from {raw}"}
        else:
            root = write_synthetic_idx(tmp / "data", dataset, plan.synthetic_train, plan.synthetic_test)
            sources[dataset] = {
                "root": str(root),
                "synthetic": True,
                "source": (
                    f"synthetic {dataset}-shaped IDX files ({plan.synthetic_train} train incl. the discriminator "
                    f"split, {plan.synthetic_test} test) written into a temporary folder and read by the real "
                    "datamodule"
                ),
            }
    return sources


def save_test_split(sources: dict[str, dict[str, Any]], workdir: Path) -> None:
    """The MNIST test images as one tensor file, for the evaluation cases (read through the real datamodule)."""
    from safetensors.torch import save_file

    from mge.data import build_datamodule

    dm = build_datamodule("mnist", root=sources["mnist"]["root"], download=False, discriminator_size=100)
    dm.setup("test")
    x, y = dm.split_tensors("test")
    save_file({"x": x.contiguous(), "y": y.contiguous()}, str(workdir / "mnist_test.safetensors"))


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
        help="folder holding MNIST/raw and FashionMNIST/raw (default ../shared/data); synthetic IDX files where absent",
    )
    parser.add_argument("--synthetic", action="store_true", help="synthetic IDX data even where the real data is")
    parser.add_argument(
        "--train-epochs",
        type=int,
        help="train each seed this many epochs and extrapolate to its recipe (default: the whole recipe)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        help="torch threads in every case (default: torch's own, the number of cores). On a machine shared with "
        "other jobs, 1 avoids the stalls of idle-waiting intra-op threads whose partner was descheduled",
    )
    parser.add_argument(
        "--omp-wait-policy",
        choices=("passive", "active", "inherit"),
        default="passive",
        help="OMP_WAIT_POLICY of the cases' processes (default passive: idle intra-op threads sleep instead of "
        "spinning; on a machine shared with other jobs, spinning made 2-thread LeNet-5 training steps 5-15x slower). "
        "It changes how threads wait, not what they compute; inherit: leave the environment alone",
    )
    parser.add_argument(
        "--isolate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one fresh process per case (default: yes, except with --quick)",
    )
    args = parser.parse_args(argv)
    global ISOLATE, THREADS
    ISOLATE = (not args.quick) if args.isolate is None else args.isolate
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    THREADS = args.threads
    if args.omp_wait_policy != "inherit":  # read when a spawned case's OpenMP runtime starts
        os.environ["OMP_WAIT_POLICY"] = args.omp_wait_policy.upper()

    import torch

    from mge.discriminator import DiscriminatorSettings

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA device is visible")
    plan = QUICK if args.quick else FULL
    if args.train_epochs is not None:
        from dataclasses import replace

        plan = replace(plan, train_epochs=args.train_epochs)
    suffix = ("-quick" if args.quick else "") + (f"-{THREADS}thread" if THREADS is not None else "")
    out = args.out or RESULTS_DIR / f"{device}{suffix}.json"
    default_chunk = DiscriminatorSettings().decision_chunk

    start = time.perf_counter()
    load_before = load_average()
    print(f"MGE benchmark ({'quick' if args.quick else 'full'}) on {device}; writing {out}", flush=True)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="mge-bench-") as tmp:
        work = Path(tmp)
        sources = prepare_data(args, plan, work)
        save_test_split(sources, work)
        common = {"workdir": str(work), "plan": asdict(plan)}
        matmul_before = run_case("matmul", device, size=plan.matmul_size, gflop=plan.matmul_gflop, tag="before")

        train = {
            ds: run_case("train", device, dataset=ds, data_root=sources[ds]["root"], tag=ds, **common)
            for ds in DATASETS
        }
        results["train"] = train
        seeds = {ds: train[ds]["seed_path"] for ds in DATASETS}
        seconds = {ds: train[ds]["one_seed_training_seconds"] for ds in DATASETS}

        # Fashion-MNIST: the acceptance target's pool; every early-stopping variant, interleaved;
        # the first run (the default variant) also scores its pool on the test set.
        variants = early_stop_variants(plan, default_chunk)
        default = {"early_stop": True, "decision_chunk": default_chunk, "evaluate_test": True}
        fashion_variants = [default, *variants]
        fashion = run_case(
            "generate",
            device,
            dataset="fashion_mnist",
            n=plan.fashion_n,
            seed_path=seeds["fashion_mnist"],
            variants=fashion_variants,
            tag=f"fashion_mnist N={plan.fashion_n}, {len(fashion_variants)} runs",
            **common,
        )
        # MNIST: one process per pool size with the defaults (time and memory), then the early-stopping variants.
        mnist = []
        for n in plan.mnist_ns:
            keep = str(work / "mnist_pool") if n == max(plan.mnist_ns) else None
            mnist.append(
                run_case(
                    "generate",
                    device,
                    dataset="mnist",
                    n=n,
                    seed_path=seeds["mnist"],
                    variants=[{"early_stop": True, "decision_chunk": default_chunk}],
                    keep=keep,
                    tag=f"mnist N={n}",
                    **common,
                )
            )
        mnist_early = run_case(
            "generate",
            device,
            dataset="mnist",
            n=plan.early_stop_mnist_n,
            seed_path=seeds["mnist"],
            variants=variants,
            tag=f"mnist N={plan.early_stop_mnist_n}, {len(variants)} runs",
            **common,
        )
        results["generate"] = {
            "fashion_mnist": [summarise_generation(fashion, seconds["fashion_mnist"], default_chunk)],
            "mnist": [summarise_generation(c, seconds["mnist"], default_chunk) for c in mnist],
        }
        results["early_stopping"] = {
            "fashion_mnist": results["generate"]["fashion_mnist"][0],
            "mnist": summarise_generation(mnist_early, seconds["mnist"], default_chunk),
        }
        results["raw_generation_runs"] = {
            "fashion_mnist": fashion["runs"],
            "mnist": [c["runs"] for c in mnist],
            "mnist_early_stopping": mnist_early["runs"],
        }
        for runs in [fashion["runs"], mnist_early["runs"], *[c["runs"] for c in mnist]]:
            for r in runs:
                r["member_sha256"] = len(r["member_sha256"])  # the identity check ran; keep the JSON small

        matmul_middle = run_case("matmul", device, size=plan.matmul_size, gflop=plan.matmul_gflop, tag="middle")
        results["evaluate"] = {
            "lenet5": evaluation_rows("lenet5", list(plan.eval_ns), device, work, work / "mnist_pool", plan),
            "resnet18": evaluation_rows("resnet18", [plan.resnet_eval_n], device, work, None, plan),
        }
        matmul_after = run_case("matmul", device, size=plan.matmul_size, gflop=plan.matmul_gflop, tag="after")

    peak_gflops = max(m["gflops"] for m in (matmul_before, matmul_middle, matmul_after))
    for rows in results["evaluate"].values():
        for row in rows:
            for method in ("batched", "loop"):
                row[method]["fraction_of_matmul_peak"] = row[method]["gflops"] / peak_gflops

    report = {
        "benchmark": "mge",
        "mode": "quick" if args.quick else "full",
        "command": "python benchmarks/bench_mge.py"
        + (" --quick" if args.quick else "")
        + (f" --threads {THREADS}" if THREADS is not None else "")
        + (f" --omp-wait-policy {args.omp_wait_policy}" if args.omp_wait_policy != "passive" else ""),
        "threads_requested": THREADS,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(device),
        "matmul_fp32": {
            "before": matmul_before,
            "before_evaluation": matmul_middle,
            "after": matmul_after,
            "peak_gflops": peak_gflops,
        },
        "code": code_version(),
        "data": sources,
        "isolated_processes": ISOLATE,
        "load_average": {"before": load_before, "after": load_average()},
        "plan": asdict(plan),
        "default_decision_chunk": default_chunk,
        "targets": targets(results, peak_gflops),
        "results": results,
        "wall_seconds": time.perf_counter() - start,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=_json_default, allow_nan=False) + "\n")
    print_summary(report)
    print(f"wrote {out} ({report['wall_seconds']:.0f} s)")
    return report


def targets(results: dict[str, Any], peak_gflops: float) -> dict[str, Any]:
    """The issues' targets from the measurements, with their ratios and whether each is met."""
    fashion = results["generate"]["fashion_mnist"][0]
    mnist = {g["n_requested"]: g for g in results["generate"]["mnist"]}
    ns = sorted(mnist)
    big, small = mnist[ns[-1]], mnist[ns[-2] if len(ns) > 1 else ns[-1]]
    lenet = results["evaluate"]["lenet5"][-1]
    raw = _ratio(big["memory"]["peak_rss_mb"], small["memory"]["peak_rss_mb"])
    increase = _ratio(big["memory"]["peak_rss_increase_mb"], small["memory"]["peak_rss_increase_mb"])
    ratio = fashion["ratio_to_seed_training"]
    unchanged = (
        fashion["members_identical_across_variants"]
        and results["early_stopping"]["mnist"]["members_identical_across_variants"]
    )
    return {
        "fashion_time_per_kept_model_vs_seed_training": {
            "target": f"<= {TARGET_TIME_RATIO:.1%}",
            "n_models": fashion["n_requested"],
            "seconds_per_kept": fashion["seconds_per_kept"],
            "one_seed_training_seconds": fashion["one_seed_training_seconds"],
            "ratio": ratio,
            "probe_ratio": fashion["probe_ratio"],
            "accepted_set_unchanged": unchanged,
            "met": ratio is not None and ratio <= TARGET_TIME_RATIO and unchanged,
        },
        "mnist_time_per_kept_model_vs_seed_training": {
            "target": f"<= {TARGET_TIME_RATIO:.1%}",
            "n_models": big["n_requested"],
            "ratio": big["ratio_to_seed_training"],
            "probe_ratio": big["probe_ratio"],
            "met": big["ratio_to_seed_training"] is not None and big["ratio_to_seed_training"] <= TARGET_TIME_RATIO,
        },
        "batched_evaluation_fraction_of_matmul_peak": {
            "target": f">= {TARGET_PEAK_FRACTION:.0%} (LeNet-5, N = {lenet['n_models']})",
            "n_models": lenet["n_models"],
            "fraction": lenet["batched"]["gflops"] / peak_gflops,
            "gflops": lenet["batched"]["gflops"],
            "matmul_peak_gflops": peak_gflops,
            "speedup_vs_loop": lenet["speedup"],
            "met": lenet["batched"]["gflops"] / peak_gflops >= TARGET_PEAK_FRACTION,
        },
        "generation_memory_1000_vs_100": {
            "target": f"<= {TARGET_MEMORY_RATIO:g}x",
            "n_models": [small["n_requested"], big["n_requested"]],
            "peak_rss_ratio": raw,
            "peak_rss_increase_ratio": increase,
            "met": raw is not None and raw <= TARGET_MEMORY_RATIO,
        },
    }


def _json_default(value: Any) -> Any:
    return str(value)


def print_summary(report: dict[str, Any]) -> None:
    t = report["targets"]
    for ds, train in report["results"]["train"].items():
        print(
            f"{ds} seed: {train['one_seed_training_seconds']:.1f} s ({train['one_seed_training']}), "
            f"test accuracy {train['seed_test_accuracy']:.4f}"
        )
    for ds, es in report["results"]["early_stopping"].items():
        parts = [
            f"{label} {v['discriminator_seconds']:.2f} s" for label, v in es["variants"].items()
        ]  # fmt: skip
        print(f"{ds} discriminator seconds, N={es['n_requested']}: " + ", ".join(parts))
    for name, target in t.items():
        shown = {k: v for k, v in target.items() if k not in ("target", "met")}
        print(f"{name} (target {target['target']}): {'met' if target['met'] else 'NOT met'} {shown}")


if __name__ == "__main__":
    main()
