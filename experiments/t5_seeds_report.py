"""T5 over training seeds: mean ± std per (dataset, eps, pool) of the mge-attack jobs in one folder.

Each job is one dataset and one training seed's pools (experiments/t5_seeds.sh puts them in
``<out>/seed<s>/<dataset>``). This links every job into ``<out>/seeds`` and writes there the T5
experiment's table with the sweep machinery's seed aggregation (``t5_adversarial.{md,csv,png}``,
mean ± std over seeds, and ``t5_adversarial_per_seed.{md,csv}``), and ``t5_summary{,_per_seed}.md``:
the headline columns in percent, and ``t5_paired.md``: MGE minus each other pool per seed, as
docs/adversarial.md quotes them. The seed of a job is its ``seed``
setting, which t5_seeds.sh sets to the training seed.

    python experiments/t5_seeds_report.py /work/artifacts/t5
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import OmegaConf

from mge.reporting import markdown_table
from mge.reporting.sweep import collect_jobs, sweep_rows

EXPERIMENT = Path(__file__).resolve().parents[1] / "conf" / "experiment" / "t5_adversarial.yaml"
# The headline columns of the summary: column -> heading (accuracies on the attacked examples).
SUMMARY = {
    "seed_white_box": "seed, white-box",
    "member_transfer_pgd": "members, seed's PGD",
    "member_white_box": "members, own PGD",
    "matrix_off_diagonal": "member to member",
    "vote_transfer": "vote, seed's PGD",
    "vote_worst_case": "vote, worst case",
    "random_transfer": "random, seed's PGD",
    "random_worst_case": "random, worst case",
}


def percent(row: dict[str, Any], column: str) -> str:
    """``mean ± std`` in percent over seeds; the value alone for one job."""
    if row.get("seeds", 1) > 1:
        return f"{100 * row[column]:.1f} ± {100 * row[f'{column}_std']:.1f}"
    return f"{100 * row[column]:.1f}"


def summary(table: list[dict[str, Any]], first: str) -> str:
    """T5 rows (per job, or aggregated over seeds) as a Markdown table of the headline columns."""
    headers = ["dataset", "eps", "pool", first, "examples", *SUMMARY.values()]
    rows = [
        [r["dataset"], f"{r['eps']:g}", r["pool"], r[first], f"{r['examples']:.0f}", *(percent(r, c) for c in SUMMARY)]
        for r in table
    ]
    return markdown_table(headers, rows)


PAIRED = ("member_transfer_pgd", "matrix_off_diagonal", "vote_transfer", "vote_worst_case", "random_worst_case")


def paired(rows: list[dict[str, Any]], pool: str = "MGE") -> str:
    """``pool`` minus each other pool, per seed (same seed, same examples), in points, and their mean."""
    cells: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in rows:
        cells.setdefault((r["dataset"], r["eps"], r["seed"]), {})[r["pool"]] = r
    out = []
    for dataset, eps in sorted({(d, e) for d, e, _ in cells}):
        seeds = sorted(s for d, e, s in cells if (d, e) == (dataset, eps))
        others = sorted({p for s in seeds for p in cells[dataset, eps, s]} - {pool})
        for other in others:  # over the seeds whose job holds both pools (E-MGE joined the later jobs)
            both = [s for s in seeds if {pool, other} <= cells[dataset, eps, s].keys()]
            row = [dataset, f"{eps:g}", f"{pool} - {other}", " ".join(str(s) for s in both)]
            for column in PAIRED:
                diffs = [
                    100 * (cells[dataset, eps, s][pool][column] - cells[dataset, eps, s][other][column]) for s in both
                ]
                row.append(" ".join(f"{d:+.1f}" for d in diffs) + f" (mean {sum(diffs) / len(diffs):+.1f})")
            out.append(row)
    return markdown_table(["dataset", "eps", "difference", "seeds", *(SUMMARY[c] for c in PAIRED)], out)


def main(out: Path) -> None:
    """Link ``out/seed*/<dataset>`` into ``out/seeds`` and write the aggregated T5 table there."""
    jobs = sorted(p for p in out.glob("seed[0-9]*/*") if (p / "metrics.json").is_file())
    if not jobs:
        raise SystemExit(f"error: no finished T5 job under {out}/seed<s>/<dataset> (run experiments/t5_seeds.sh).")
    seeds = out / "seeds"
    seeds.mkdir(exist_ok=True)
    for job in jobs:
        link = seeds / f"{job.name}-{job.parent.name}"
        if not link.exists():
            link.symlink_to(job.resolve(), target_is_directory=True)
    table = OmegaConf.load(EXPERIMENT).hydra.callbacks.t5_table
    table.columns.seed = "metrics.attack.settings.seed"
    table.seed = "seed"
    report = instantiate(table)
    text = summary(report.report(seeds), "seeds")
    per_job = sorted(
        sweep_rows(collect_jobs(seeds), report.columns, report.rows_from),
        key=lambda r: (r["dataset"], r["eps"], r["pool"], r["seed"]),
    )
    (seeds / "t5_summary.md").write_text(text + "\n")
    (seeds / "t5_summary_per_seed.md").write_text(summary(per_job, "seed") + "\n")
    (seeds / "t5_paired.md").write_text(paired(per_job) + "\n")
    print(text)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/work/artifacts/t5"))
