"""The console scripts as a user types them: main job, multirun sweeps, loggers, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

FAST = ["debug=fast", "trainer.enable_progress_bar=false"]


def run(args: list[str], tmp_path: Path, cwd: Path = REPO_ROOT, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m mge.cli.<module>`` like its console script, from ``cwd`` (the repo root)."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_SILENT": "true", **env},
    )


def test_main_job_trains_generates_evolves_and_prints_the_table(tmp_path):
    result = run(["mge.cli.main", *FAST, "logger=none", "progress=false", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seed test accuracy" in result.stdout and "ratio to one seed training" in result.stdout
    assert "E-MGE soft-vote ensemble test accuracy" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["generate"]["n_kept"] == 4  # debug=fast asks for 4
    assert metrics["evolve"]["generations"] == 2 and metrics["evolve"]["population_size"] == 4
    assert (tmp_path / "population" / "manifest.json").is_file() and (tmp_path / "history.png").is_file()
    assert "run folder:" in result.stdout
    assert (tmp_path / "seed.safetensors").is_file() and (tmp_path / "pool" / "manifest.json").is_file()


def test_multirun_sweeps_seeds_into_separate_jobs_under_the_launch_folder(tmp_path):
    # the default sweep folder, resolved before any job runs: outputs/<task>/multiruns/<time>/<job>
    result = run(["mge.cli.train", "-m", "seed=1,2", *FAST, "logger=none"], tmp_path, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train" / "multiruns").iterdir()
    seeds = sorted(json.loads((sweep / str(i) / "metrics.json").read_text())["train"]["seed"] for i in (0, 1))
    assert seeds == [1, 2]


def test_joblib_launcher_runs_jobs_in_parallel_processes(tmp_path):
    sweep = tmp_path / "sweep"
    result = run(
        [
            "mge.cli.train",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "seed=3,4",
            *FAST,
            "logger=none",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert all((sweep / str(i) / "seed.safetensors").is_file() for i in (0, 1))


def wandb_records(run_folder: Path) -> bytes:
    """The raw records of an offline wandb run (uncompressed protobuf: names and values appear as bytes)."""
    (log,) = run_folder.glob("run-*.wandb")
    return log.read_bytes()


def test_wandb_logs_every_stage_as_its_own_offline_run_with_config_summary_and_artifacts(tmp_path):
    result = run(["mge.cli.main", *FAST, "logger=wandb", "progress=false", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = {}
    for folder in (tmp_path / "wandb").glob("offline-run-*"):
        records = wandb_records(folder)
        (stage,) = [s for s in ("train", "generate", "evolve") if f"mge-{s}-s0".encode() in records]
        runs[stage] = records
    assert set(runs) == {"train", "generate", "evolve"}  # one run per stage
    for stage, records in runs.items():
        assert f"mge-{stage}-s0".encode() in records and f"mge-{tmp_path.name}".encode() in records  # name, group
        assert b"discriminator" in records and b"generator" in records  # the job's config
    assert b"test_accuracy" in runs["train"]  # the summary
    assert b"n_kept" in runs["generate"] and b"members.csv" in runs["generate"]  # summary and artifact
    assert b"forward_passes" in runs["evolve"] and b"history.json" in runs["evolve"]
    assert (tmp_path / "csv" / "train" / "metrics.csv").is_file() and (tmp_path / "csv" / "generate").is_dir()
    assert (tmp_path / "csv" / "evolve").is_dir()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mge.cli.train", "data.batch_size=0"], "batch_size"),
        (["mge.cli.generate", "seed_model=/no/such/run"], "/no/such/run"),
        (["mge.cli.generate"], "seed_model is required"),
        (["mge.cli.generate", "seed_model=/no/such/run", "generator.alpha=nan"], "generator.alpha must be a finite"),
        (["mge.cli.train", "dataset=mnist", "data.root=/no/such/folder", "data.download=false"], "/no/such/folder"),
        (["mge.cli.train", "model.arch=vgg"], "model.arch: unknown architecture 'vgg'"),
        (["mge.cli.train", "ckpt_path=/no/such/last.ckpt"], "/no/such/last.ckpt"),
    ],
)
def test_bad_input_exits_with_one_clear_line(args, message, tmp_path):
    result = run([*args, "logger=none", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if message in line]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    # the traceback is in the run's log file
    assert "Traceback" in next(tmp_path.glob("*.log")).read_text()


def test_an_existing_file_as_pool_dir_and_a_truncated_checkpoint_get_one_line_each(tmp_path, digits_seed_dir):
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    truncated = tmp_path / "last.ckpt"
    truncated.write_bytes(b"PK\x03\x04 truncated")
    for args, message in (
        (["mge.cli.generate", f"seed_model={digits_seed_dir}", f"pool_dir={file}"], "is an existing file"),
        (["mge.cli.train", f"ckpt_path={truncated}"], "cannot be resumed from"),
    ):
        result = run([*args, "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], tmp_path)
        assert result.returncode == 2 and result.stderr.count("error: ") == 1, result.stderr[-2000:]
        assert message in result.stderr and "Traceback" not in result.stderr


def test_submitit_launcher_runs_a_sweep_through_submitit(tmp_path):
    # submitit_local goes through the same submitit machinery as submitit_slurm, on this machine
    sweep = tmp_path / "sweep"
    result = run(
        [
            "mge.cli.train",
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "seed=5",
            *FAST,
            "logger=none",
            f"hydra.sweep.dir={sweep}",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((sweep / "0" / "metrics.json").read_text())["train"]["seed"] == 5


def test_slurm_launcher_config_composes(tmp_path):
    result = run(
        [
            "mge.cli.train",
            "hydra/launcher=submitit_slurm",
            "hydra.launcher.partition=gpu",
            "--cfg",
            "hydra",
            "--package",
            "hydra.launcher",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "SlurmLauncher" in result.stdout and "partition: gpu" in result.stdout


def test_stdout_holds_only_the_results_and_frameworks_stay_quiet(tmp_path):
    result = run(["mge.cli.main", *FAST, "logger=none", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith("| metric") and result.stdout.splitlines()[-1].startswith(
        "run folder:"
    )
    for noise in ("Tip:", "GPU available", "LeafSpec", "`Trainer.fit` stopped"):
        assert noise not in result.stderr and noise not in result.stdout


def test_callbacks_none_writes_no_checkpoint(tmp_path):
    result = run(["mge.cli.train", *FAST, "logger=none", "callbacks=none", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "seed.safetensors").is_file()
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_trainer_gpu_without_a_gpu_is_one_line_with_the_fix(tmp_path):
    result = run(["mge.cli.train", "trainer=gpu", "logger=none", f"hydra.run.dir={tmp_path}"], tmp_path)
    assert result.returncode == 2 and result.stderr.count("error: ") == 1
    assert "use trainer=cpu" in result.stderr and "Traceback" not in result.stderr
