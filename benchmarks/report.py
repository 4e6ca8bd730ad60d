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


def render(report: dict[str, Any]) -> str:
    m, r, t = report["machine"], report["results"], report["targets"]
    out = []
    load = report.get("load_average") or {}
    out.append(
        f"Machine: {m['cpu_model']}, {m['cpu_cores']} cores, {m['memory_gb']} GB, "
        f"{'GPU ' + m['gpu'] if m['gpu'] else 'no GPU'}; torch {m['torch']} ({m['torch_threads']} threads), "
        f"fp32 matrix product {m.get('matmul_fp32_gflops', float('nan')):.0f} GFLOP/s, "
        f"Python {m['python']}. Date {report['date']}, run took {report['wall_seconds'] / 60:.1f} min; "
        f"load average before {load.get('before')}, after {load.get('after')}."
    )
    tr, sp, mem = (t["time_per_accepted_model_vs_seed_training"], t["batched_vs_loop_speedup"],
                   t["generation_memory_1000_vs_100"])  # fmt: skip
    out.append("\n### Targets\n")
    out.append(table(
        ["target", "measured", "met"],
        [
            [f"time per accepted model {tr['target']} of one seed training (N = {tr['n_models']})",
             f"{tr['percent']:.3f} % (with disk writes {100 * tr['ratio_with_disk_writes']:.3f} %)",
             "yes" if tr["met"] else "no"],
            [f"batched evaluation {sp['target']}",
             ", ".join(f"N={n}: {v:.2f}x" for n, v in sp["speedup_by_n"].items()), "yes" if sp["met"] else "no"],
            [f"memory generating {mem['n_models'][1]} models {mem['target']} of {mem['n_models'][0]}",
             f"peak RSS {mem['peak_rss_ratio']:.2f}x, increase above setup {mem['peak_rss_increase_ratio']:.2f}x",
             "yes" if mem["met"] else "no"],
        ],
    ))  # fmt: skip
    seed = r["train_seed"]
    out.append("\n### Seed training (LeNet-5, MNIST recipe)\n")
    out.append(table(
        ["data", "batches/epoch", "s/epoch", "fit overhead s", "recipe epochs", "one seed training s",
         "test acc after 1 epoch", "peak RSS MB"],
        [[seed["data"], seed["train_batches_per_epoch"], s(seed["seconds_per_epoch"]), s(seed["fit_overhead_seconds"]),
          seed["recipe_max_epochs"], s(seed["one_seed_training_seconds"], 1), s(seed["seed_test_accuracy"], 4),
          s(seed["memory"]["peak_rss_mb"], 0)]],
    ))  # fmt: skip
    out.append("\n### Generation + discriminator\n")
    rows = []
    for arch, gens in r["generate"].items():
        if not isinstance(gens, list):
            continue
        for g in gens:
            ratio = g.get("ratio_to_one_seed_training")
            rows.append([
                arch, g["n_requested"], g["accepted"], g["candidates"], g["rounds"], s(g["acceptance_rate"]),
                s(g["seconds_per_accepted"], 3), "n/a" if ratio is None else f"{100 * ratio:.3f} %",
                s(g["total_seconds"], 1), s(g["total_seconds_per_accepted"], 3),
                s(g["memory"]["rss_after_setup_mb"], 0), s(g["memory"]["peak_rss_mb"], 0),
                s(g["memory"]["peak_rss_increase_mb"], 0),
                f"{min(g['rss_per_round_mb']):.0f}-{max(g['rss_per_round_mb']):.0f}",
            ])  # fmt: skip
    out.append(table(
        ["model", "N", "accepted", "candidates", "rounds", "acceptance", "s/accepted (gen+disc)",
         "of seed training", "total s (with writes)", "total s/accepted", "RSS after setup MB", "peak RSS MB",
         "peak increase MB", "RSS after each round MB"],
        rows,
    ))  # fmt: skip
    out.append("\n### Pool evaluation: batched vs one model at a time\n")
    rows = []
    for arch, evals in r["evaluate"].items():
        for e in evals:
            b, lp = e["batched"], e["loop"]
            rows.append([
                arch, e["n_models"], e["examples"],
                f"{s(b['seconds'])}{' (from ' + str(b['models_timed']) + ')' if b['extrapolated'] else ''}",
                f"{s(lp['seconds'])}{' (from ' + str(lp['models_timed']) + ')' if lp['extrapolated'] else ''}",
                f"{e['speedup']:.2f}x", f"{e['prediction_mismatches']} / {e['predictions_compared']}",
                s(b["memory"]["peak_rss_mb"], 0), s(lp["memory"]["peak_rss_mb"], 0),
            ])  # fmt: skip
    out.append(table(
        ["model", "N", "examples", "batched s", "loop s", "speedup", "mismatches", "batched peak RSS MB",
         "loop peak RSS MB"],
        rows,
    ))  # fmt: skip
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path)
    print(render(json.loads(parser.parse_args().json.read_text())))


if __name__ == "__main__":
    main()
