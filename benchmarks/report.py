#!/usr/bin/env python
"""Markdown tables of a ``bench_mge.py`` JSON, for ``docs/benchmarks.md``.

python benchmarks/report.py benchmarks/results/cpu.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mge.reporting import markdown_table as table


def s(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def pct(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f} %"


def _loads(report: dict[str, Any]) -> list[float]:
    """Every 1-minute load average the run recorded (start and end of each case)."""
    found: list[float] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "load_average" and isinstance(value, dict):
                    found.extend(v[0] for v in value.values() if isinstance(v, list) and v)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(report)
    return found


def header(report: dict[str, Any]) -> str:
    m, code, mm = report["machine"], report["code"], report["matmul_fp32"]
    loads = _loads(report)
    device = f"GPU {m['gpu']} (CUDA {m['cuda']})" if m["gpu"] else "the CPU"
    data = "; ".join(f"{name}: {'synthetic' if d['synthetic'] else 'real'}" for name, d in report["data"].items())
    commit = (code.get("commit") or "unknown")[:7] + (" + uncommitted changes" if code.get("modified") else "")
    return (
        f"**Machine**: {m['cpu_model']}, {m['cpu_cores']} cores, {m['memory_gb']} GB; every figure measured on "
        f"**{device}** (`--device {m['device']}`); torch {m['torch']} ({m['torch_threads']} threads, "
        f"OMP_WAIT_POLICY={m.get('omp_wait_policy') or 'unset'}), Python "
        f"{m['python']}. fp32 matrix product ({mm['before']['size']}, best of 5): "
        f"{mm['before']['gflops']:.0f} GFLOP/s at the start, {mm['before_evaluation']['gflops']:.0f} before the "
        f"evaluation cases, {mm['after']['gflops']:.0f} at the end (peak {mm['peak_gflops']:.0f}). **Data**: {data}. "
        f"**Date** {report['date']}, commit `{commit}`, {report['mode']} run, **{report['wall_seconds'] / 60:.1f} "
        f"min**. **Load average** (1 min): {report['load_average']['before'][0]} before, "
        f"{report['load_average']['after'][0]} after; {min(loads):.2f}-{max(loads):.2f} at the starts and ends of the "
        f"cases ({m['torch_threads']} of it the run's own threads)."
    )


def render(report: dict[str, Any]) -> str:
    r, t = report["results"], report["targets"]
    out = [header(report)]

    out.append("\n### Targets\n")
    ft, mt = t["fashion_time_per_kept_model_vs_seed_training"], t["mnist_time_per_kept_model_vs_seed_training"]
    bt, mem = t["batched_evaluation_fraction_of_matmul_peak"], t["generation_memory_1000_vs_100"]
    yes = lambda ok: "yes" if ok else "no"  # noqa: E731
    out.append(table(
        ["target", "measured", "met"],
        [
            [f"Fashion-MNIST time per kept model {ft['target']} of its seed's training (N = {ft['n_models']}), "
             "accepted set unchanged",
             f"{pct(ft['ratio'])} ({s(ft['seconds_per_kept'], 3)} s of {s(ft['one_seed_training_seconds'], 1)} s; "
             f"probe: {pct(ft['probe_ratio'])}); accepted set unchanged: {yes(ft['accepted_set_unchanged'])}",
             yes(ft["met"])],
            [f"MNIST time per kept model {mt['target']} of its seed's training (N = {mt['n_models']})",
             f"{pct(mt['ratio'])} (probe: {pct(mt['probe_ratio'])})", yes(mt["met"])],
            [f"batched evaluation {bt['target']} of the fp32 matrix product",
             f"{pct(bt['fraction'], 1)} ({bt['gflops']:.1f} of {bt['matmul_peak_gflops']:.1f} GFLOP/s), "
             f"{bt['speedup_vs_loop']:.2f}x the loop", yes(bt["met"])],
            [f"peak memory generating {mem['n_models'][1]} models {mem['target']} of {mem['n_models'][0]}",
             f"{mem['peak_rss_ratio']:.2f}x (increase above the pre-generation RSS: "
             f"{s(mem['peak_rss_increase_ratio'])}x)", yes(mem["met"])],
        ],
    ))  # fmt: skip

    out.append("\n### Seed training (LeNet-5, each dataset's recipe, seed 0)\n")
    rows = []
    for ds, tr in r["train"].items():
        rows.append([
            ds, f"{tr['epochs_trained']} / {tr['recipe_max_epochs']}", tr["train_batches_per_epoch"],
            s(tr["seconds_per_epoch"]), s(min(tr["epoch_seconds"])) + "-" + s(max(tr["epoch_seconds"])),
            s(tr["fit_overhead_seconds"]), s(tr["one_seed_training_seconds"], 1),
            "measured" if tr["full_recipe"] else "extrapolated", s(tr["seed_test_accuracy"], 4),
            s(tr["memory"]["peak_rss_mb"], 0),
        ])  # fmt: skip
    out.append(table(
        ["dataset", "epochs trained / recipe", "batches/epoch", "s/epoch", "min-max s/epoch", "fit overhead s",
         "one seed training s", "how", "test accuracy", "peak RSS MB"],
        rows,
    ))  # fmt: skip

    out.append("\n### Generation + discriminator (default settings)\n")
    rows = []
    for ds, gens in r["generate"].items():
        for g in gens:
            rej = g["rejected"]
            rows.append([
                ds, g["n_requested"], f"{g['kept']} / {g['candidates']}", g["rounds"],
                f"{rej['distribution']} / {rej['accuracy']}", s(g["seconds_per_kept"], 4),
                pct(g["ratio_to_seed_training"]), s(g["probe_seconds"], 1), pct(g["probe_ratio"]),
                s(g["memory"]["rss_before_timed_mb"], 0), s(g["memory"]["peak_rss_mb"], 0),
                f"{min(g['rss_per_round_mb']):.0f}-{max(g['rss_per_round_mb']):.0f}",
            ])  # fmt: skip
    out.append(table(
        ["dataset", "N", "kept / candidates", "rounds", "rejected: distribution / accuracy", "s per kept model",
         "of seed training", "probe's training s", "of probe's", "RSS before MB", "peak RSS MB",
         "RSS after each round MB"],
        rows,
    ))  # fmt: skip
    fashion = r["generate"]["fashion_mnist"][0]
    if fashion.get("test") and fashion["test"].get("accuracy"):
        acc = fashion["test"]["accuracy"]
        out.append(
            f"\nThe Fashion-MNIST pool on the test set: seed {fashion['test']['seed_accuracy']:.4f}, members "
            f"{acc['mean']:.4f} mean ({acc['min']:.4f}-{acc['max']:.4f}); pool hash `{fashion['pool_hash'][:12]}`."
        )

    out.append("\n### The discriminator's early stopping (same candidates, same verdicts)\n")
    rows = []
    for ds, es in r["early_stopping"].items():
        for label, v in es["variants"].items():
            rows.append([
                ds, es["n_requested"], label, v["repeats"], s(v["discriminator_seconds"]),
                ", ".join(s(x) for x in v["discriminator_seconds_each"]),
                s(v.get("discriminator_speedup_vs_off")) + "x",
                f"{v['examples_scored']:,}", pct(v.get("examples_scored_vs_off"), 0), s(v["generation_seconds"]),
                s(v["seconds_per_kept"], 4), pct(v["ratio_to_seed_training"]),
            ])  # fmt: skip
    out.append(table(
        ["dataset", "N", "early stopping", "runs", "discriminator s (best)", "each run", "vs off",
         "examples scored", "of off", "sampling s", "s per kept model", "of seed training"],
        rows,
    ))  # fmt: skip
    first = r["early_stopping"]["fashion_mnist"].get("first_run")
    if first:
        out.append(
            f"\nThe process's first run (cold caches; its pool was then scored on the test set), {first['label']}: "
            f"discriminator {s(first['discriminator_seconds'])} s, {s(first['seconds_per_kept'], 4)} s per kept model "
            "(left out of the table)."
        )
    out.append(
        "\nEvery variant kept the same members (content hashes compared in the run): "
        + ", ".join(f"{ds} {es['kept']} of {es['candidates']}" for ds, es in r["early_stopping"].items())
        + f". Default `decision_chunk`: {report['default_decision_chunk']}."
    )

    out.append("\n### Pool evaluation: batched vs one model at a time\n")
    rows = []
    for arch, evals in r["evaluate"].items():
        for e in evals:
            b, lp = e["batched"], e["loop"]
            rows.append([
                arch, e["n_models"], e["examples"],
                f"{s(b['seconds'])}{' (from ' + str(b['models_timed']) + ')' if b['extrapolated'] else ''}",
                f"{s(lp['seconds'])}{' (from ' + str(lp['models_timed']) + ')' if lp['extrapolated'] else ''}",
                f"{e['speedup']:.2f}x", s(b["gflops"], 1), pct(b["fraction_of_matmul_peak"], 1),
                s(lp["gflops"], 1), pct(lp["fraction_of_matmul_peak"], 1),
                f"{e['prediction_mismatches']} / {e['predictions_compared']}",
                s(b["memory"]["peak_rss_mb"], 0), s(lp["memory"]["peak_rss_mb"], 0),
            ])  # fmt: skip
    out.append(table(
        ["model", "N", "examples", "batched s", "loop s", "speedup", "batched GFLOP/s", "of matmul peak",
         "loop GFLOP/s", "of matmul peak", "mismatches", "batched peak RSS MB", "loop peak RSS MB"],
        rows,
    ))  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path)
    print(render(json.loads(parser.parse_args().json.read_text())))


if __name__ == "__main__":
    main()
