"""conf/hparams_search/generate_optuna.yaml: an Optuna study over the generator's knobs, as a Hydra multirun."""

import subprocess
import sys

import yaml

from tests.helpers import REPO_ROOT


def test_an_optuna_search_runs_its_trials_and_reports_the_best_knobs(digits_seed_dir, tmp_path):
    sweep = tmp_path / "search"
    result = subprocess.run(
        [sys.executable, "-m", "mge.cli.generate", "hparams_search=generate_optuna", f"seed_model={digits_seed_dir}",
         "n=8", "generator.batch_size=16", "generator.max_rounds=4", "time_probe_steps=1",
         "hydra.sweeper.n_trials=2", "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={sweep}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(best["best_params"]) == {"generator.target_acceptance", "generator.feedback_step", "generator.alpha"}
    assert 0.0 <= best["best_value"] <= 1.0  # a mistake IoU
    assert all((sweep / str(i) / "metrics.json").is_file() for i in range(2))
