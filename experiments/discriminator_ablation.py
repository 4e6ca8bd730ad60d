"""Does each discriminator test earn its place? (issue #15)

At a fixed energy threshold t (feedback off), draws ``rounds x batch`` MGE candidates from a seed
(round 0 is the T3 job's round at that t: same generator seed) and Gaussian weight noise matched
to them member by member and tensor by tensor (mge.baselines.matched_noise). Every candidate is
scored by the real discriminator under each combination of tests switched on and off, and every
candidate is evaluated once on the test set, so the pool a combination accepts is read off
without re-evaluating. Per combination it reports, for MGE and for noise: acceptance, the accepted
pool's mean / min test accuracy and mean mistake IoU with the seed, what each test of the cascade
removed (count, and those candidates' mean test accuracy and IoU) -- a test that helps removes
candidates worse on the test set than the ones it keeps. It also reports how well each distribution
statistic separates MGE from the matched noise (ROC AUC: the chance that an MGE candidate scores
lower, i.e. closer to the seed, than a noise candidate; 0.5 = no separation).

    python experiments/discriminator_ablation.py /work/artifacts/mnist/seed0 --threshold 0.99 \\
        --data-root /work/shared/data --out outputs/discriminator_ablation/mnist

Writes ``ablation.json`` and ``ablation.md`` into --out and prints the Markdown.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mge.baselines import matched_noise
from mge.discriminator import Discriminator, DiscriminatorSettings
from mge.evaluation import predict_batched
from mge.evaluation.metrics import mistake_iou
from mge.generator import GeneratorSettings, LatentSampler, select_targets
from mge.latent import LatentCodec
from mge.pool import load_seed
from mge.reporting import markdown_table
from mge.runs import seed_datamodule

# (name, W1 test on, spectral test on, accuracy bound); the finite test is always on
COMBINATIONS = (
    ("no test", False, False, "none"),
    ("W1 only", True, False, "none"),
    ("spectral only", False, True, "none"),
    ("accuracy (tolerance) only", False, False, "tolerance"),
    ("accuracy (binomial) only", False, False, "binomial"),
    ("W1 + accuracy (tolerance) [default]", True, False, "tolerance"),
    ("W1 + accuracy (binomial)", True, False, "binomial"),
    ("spectral + accuracy (tolerance)", False, True, "tolerance"),
    ("spectral + accuracy (binomial)", False, True, "binomial"),
    ("W1 + spectral + accuracy (tolerance)", True, True, "tolerance"),
)
CASCADE = ("non_finite", "distribution", "spectral", "accuracy")
SPECTRAL_BOUNDS = (0.005, 0.01, 0.02, 0.05)  # acceptance of the spectral test alone at other bounds


def roc_auc(lower: Tensor, higher: Tensor) -> float:
    """P(a value of ``lower`` < a value of ``higher``), ties counting half: the ROC AUC of the statistic."""
    a, b = lower.double()[:, None], higher.double()[None, :]
    return ((a < b).double() + 0.5 * (a == b).double()).mean().item()


def _mean(values: Tensor) -> float | None:
    return values.double().mean().item() if values.numel() else None


@torch.no_grad()
def _statistics(disc: Discriminator, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """Every test's statistic on every candidate: finite, W1 / std, spectral distance, correct answers on the split."""
    if disc.spectral is None:
        raise ValueError("The ablation's discriminator needs the spectral test on (max_spectral_distance).")
    finite = torch.stack([c.flatten(1).isfinite().all(dim=1) for c in params.values()]).all(dim=0)
    predictions = predict_batched(disc.model, params, disc.inputs)
    return {
        "finite": finite,
        "distribution": disc.distribution_distance(params).masked_fill(~finite, float("inf")),
        "spectral": disc.spectral(params).masked_fill(~finite, float("inf")),
        "correct": (predictions == disc.labels).sum(dim=1),
    }


def _verdicts(
    stats: dict[str, Tensor],
    settings: DiscriminatorSettings,
    min_correct: dict[str, int],
    w1: bool,
    spectral: bool,
    bound: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(accepted, {test: removed})`` of one combination, each rejection charged to the first test of the cascade."""
    alive = stats["finite"].clone()
    removed = {"non_finite": ~alive}
    w1_bound, spectral_bound = settings.max_distribution_distance, settings.max_spectral_distance
    checks = {
        "distribution": stats["distribution"] <= w1_bound if w1 and w1_bound is not None else None,
        "spectral": stats["spectral"] <= spectral_bound if spectral and spectral_bound is not None else None,
        "accuracy": stats["correct"] >= min_correct[bound] if bound != "none" else None,
    }
    for name, passed in checks.items():
        if passed is not None:
            removed[name] = alive & ~passed
            alive &= passed
    return alive, removed


def ablation(
    seed_path: str,
    threshold: float,
    *,
    rounds: int,
    batch: int,
    data_root: str | None,
    spectral_bound: float,
    rng_seed: int = 0,
) -> dict[str, Any]:
    """Scores and test-set figures of every combination of tests, for MGE and matched noise."""
    start = time.perf_counter()
    seed = load_seed(seed_path)
    dm = seed_datamodule(seed, data_root)
    dm.setup("fit")
    x_disc, y_disc = dm.split_tensors("discriminator")
    x_test, y_test = dm.split_tensors("test")
    model = seed.build()
    targets = select_targets(model)
    seed_params = {k: seed.state_dict[k].float() for k in targets}
    codec = LatentCodec(GeneratorSettings().granularity)  # type: ignore[arg-type]
    sampler = LatentSampler(seed_params, codec)
    generator = torch.Generator().manual_seed(rng_seed)
    draws = [sampler.sample(batch, threshold=threshold, alpha=1.0, generator=generator) for _ in range(rounds)]
    pools = {"mge": {k: torch.cat([d[k] for d in draws]) for k in seed_params}}
    pools["noise"] = matched_noise(seed_params, pools["mge"], seed=rng_seed)

    # every test on, for the statistics; the real cascade (early stopping) checks the offline verdicts
    settings = replace(DiscriminatorSettings(), max_spectral_distance=spectral_bound)
    disc = Discriminator(model, seed_params, x_disc, y_disc, settings, codec=codec)
    binomial_settings = replace(settings, accuracy_bound="binomial")
    binomial = Discriminator(model, seed_params, x_disc, y_disc, binomial_settings, codec=codec)
    min_correct = {"tolerance": disc.min_correct, "binomial": binomial.min_correct}
    seed_test = predict_batched(model, {k: v.unsqueeze(0) for k, v in seed_params.items()}, x_test)[0]
    result: dict[str, Any] = {
        "seed": str(seed_path),
        "dataset": seed.meta.get("dataset"),
        "threshold": threshold,
        "candidates": rounds * batch,
        "seed_test_accuracy": (seed_test == y_test).double().mean().item(),
        "seed_discriminator_accuracy": disc.seed_accuracy,
        "discriminator_examples": len(disc.labels),
        "accuracy_bounds": {"tolerance": disc.accuracy_bound, "binomial": binomial.accuracy_bound},
        "spectral_bound": spectral_bound,
        "settings": {"w1_bound": settings.max_distribution_distance, "tolerance": settings.accuracy_tolerance,
                     "confidence": settings.accuracy_confidence, "spectral_bands": settings.spectral_bands},
        "combinations": [],
    }  # fmt: skip
    stats, test = {}, {}
    for name, params in pools.items():
        stats[name] = _statistics(disc, params)
        predictions = predict_batched(model, params, x_test)
        test[name] = {
            "accuracy": (predictions == y_test).double().mean(dim=1),
            "iou": mistake_iou(predictions, seed_test, y_test),
        }
        cascade = disc.score(params).accepted
        offline, _ = _verdicts(stats[name], settings, min_correct, True, True, "tolerance")
        if not torch.equal(cascade, offline):
            raise RuntimeError(f"{name}: the offline verdicts differ from the discriminator's own")

    for combination, w1, spectral, bound in COMBINATIONS:
        row: dict[str, Any] = {"combination": combination}
        for pool_name in pools:
            acc, iou = test[pool_name]["accuracy"], test[pool_name]["iou"]
            kept, removed = _verdicts(stats[pool_name], settings, min_correct, w1, spectral, bound)
            row[pool_name] = {
                "accepted": int(kept.sum()),
                "acceptance": kept.double().mean().item(),
                "accuracy_mean": _mean(acc[kept]),
                "accuracy_min": acc[kept].min().item() if bool(kept.any()) else None,
                "iou_mean": _mean(iou[kept]),
                "removed": {
                    t: {"count": int(m.sum()), "accuracy_mean": _mean(acc[m]), "iou_mean": _mean(iou[m])}
                    for t, m in removed.items()
                    if bool(m.any())
                },
            }
        result["combinations"].append(row)

    separation: dict[str, Any] = {}
    for statistic in ("distribution", "spectral", "correct"):
        m, n = stats["mge"][statistic].double(), stats["noise"][statistic].double()
        if statistic == "correct":  # higher is closer to the seed: flip so that lower = closer
            m, n = -m, -n
        q = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
        sign = -1.0 if statistic == "correct" else 1.0
        separation[statistic] = {
            "auc": roc_auc(m, n),
            "mge_quantiles": (sign * torch.quantile(m, q)).tolist(),
            "noise_quantiles": (sign * torch.quantile(n, q)).tolist(),
        }
    separation["spectral"]["acceptance_at"] = {
        str(b): {k: (stats[k]["spectral"] <= b).double().mean().item() for k in pools} for b in SPECTRAL_BOUNDS
    }
    result["separation"] = separation
    result["seconds"] = time.perf_counter() - start
    return result


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def report(result: dict[str, Any]) -> str:
    """The Markdown tables of one ablation."""
    bounds = result["accuracy_bounds"]
    lines = [
        f"{result['dataset']} (seed test accuracy {_pct(result['seed_test_accuracy'])}, discriminator split "
        f"{_pct(result['seed_discriminator_accuracy'])} of {result['discriminator_examples']}), t = "
        f"{result['threshold']}, {result['candidates']} MGE candidates and as many matched-noise ones; accuracy "
        f"bound {_pct(bounds['tolerance'])} (tolerance) or {_pct(bounds['binomial'])} (binomial); spectral bound "
        f"{result['spectral_bound']}.",
        "",
    ]
    rows = []
    for row in result["combinations"]:
        for pool in ("mge", "noise"):
            r = row[pool]
            removed = "; ".join(
                f"{t} {v['count']} ({_pct(v['accuracy_mean'])}, IoU {_num(v['iou_mean'])})"
                for t, v in r["removed"].items()
            )
            rows.append([row["combination"] if pool == "mge" else "", pool, f"{r['accepted']}",
                         f"{r['acceptance']:.3f}", _pct(r["accuracy_mean"]), _pct(r["accuracy_min"]),
                         _num(r["iou_mean"]), removed or "-"])  # fmt: skip
    lines.append(
        markdown_table(
            ["tests on", "pool", "accepted", "acceptance", "test acc. mean", "min", "mistake IoU",
             "removed by (count, their test acc., IoU)"],
            rows,
        )
    )  # fmt: skip
    lines += [
        "",
        "Separation of MGE from matched noise: ROC AUC (chance that an MGE candidate is closer to the seed than "
        "a noise one; correct = right answers on the discriminator split) and quantiles 10/50/90%:",
        "",
    ]
    sep = result["separation"]
    lines.append(
        markdown_table(
            ["statistic", "AUC", "MGE quantiles", "noise quantiles"],
            [
                [k, f"{v['auc']:.3f}", " / ".join(f"{q:.4f}" for q in v["mge_quantiles"]),
                 " / ".join(f"{q:.4f}" for q in v["noise_quantiles"])]
                for k, v in sep.items()
            ],
        )
    )  # fmt: skip
    lines += ["", "Acceptance of the spectral test alone at other bounds (MGE / noise):", ""]
    lines.append(
        markdown_table(
            ["bound", "MGE", "noise"],
            [[b, f"{v['mge']:.3f}", f"{v['noise']:.3f}"] for b, v in sep["spectral"]["acceptance_at"].items()],
        )
    )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed", help="an mge-train run folder or a seed .safetensors file")
    parser.add_argument("--threshold", type=float, required=True, help="energy threshold t (feedback off)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--spectral-bound", type=float, default=0.02)
    parser.add_argument("--out", default="outputs/discriminator_ablation")
    args = parser.parse_args()
    result = ablation(
        args.seed,
        args.threshold,
        rounds=args.rounds,
        batch=args.batch,
        data_root=args.data_root,
        spectral_bound=args.spectral_bound,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.json").write_text(json.dumps(result, indent=2) + "\n")
    text = report(result)
    (out / "ablation.md").write_text(text)
    print(text)
    print(f"{result['seconds']:.0f} s")


if __name__ == "__main__":
    main()
