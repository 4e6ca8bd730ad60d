"""mge-evolve: from an MGE pool or a seed, the run's files, the ablation variants, clear errors before any work."""

import json
from pathlib import Path

import pytest
import torch

from mge.cli.evolve import evolve, evolve_settings, summary_table
from mge.errors import ConfigError
from mge.pool import Pool
from tests.helpers import QUIET_GENERATE, compose_config

SMALL = [
    *QUIET_GENERATE,
    "evolution.population_size=6",
    "evolution.children=6",
    "evolution.generations=2",
    "time_probe_steps=1",
]
GENERATE_SMALL = ["n=6", "generator.batch_size=16", "generator.max_rounds=10"]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on the 2 shared cores of the dev box, more threads ran many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def mge_pool(digits_seed_dir, tmp_path_factory) -> Path:
    from mge.cli.generate import generate

    out = tmp_path_factory.mktemp("mge")
    generate(compose_config("generate", [*QUIET_GENERATE, *GENERATE_SMALL, f"seed_model={digits_seed_dir}"], out))
    return out / "pool"


def test_evolving_a_pool_writes_the_population_its_history_and_the_curves(tmp_path, mge_pool):
    cfg = compose_config("evolve", [*SMALL, f"pool={mge_pool}"], tmp_path)
    report = evolve(cfg)
    population = Pool.load(tmp_path / "population")
    assert len(population) == 6 and population.kind == "evolved"
    assert population.lineage_pool("history").pool_hash() == Pool.load(tmp_path / "history").pool_hash()
    history = json.loads((tmp_path / "history.json").read_text())["history"]
    assert [e["generation"] for e in history] == [0, 1, 2]
    for entry in history[1:]:
        for key in ("best_fitness", "mean_fitness", "mean_accuracy", "diversity", "acceptance", "forward_passes"):
            assert isinstance(entry[key], float | int), key
        assert entry["seconds"] > 0
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = summary_table(report.to_dict())
    assert "E-MGE soft-vote ensemble test accuracy" in table and "E-MGE forward passes" in table


def test_evolving_from_a_seed_generates_the_initial_pool_first(tmp_path, digits_seed_dir):
    cfg = compose_config("evolve", [*SMALL, *GENERATE_SMALL, f"seed_model={digits_seed_dir}"], tmp_path)
    report = evolve(cfg)
    assert len(Pool.load(tmp_path / "pool")) == 6 and report.generation is not None
    assert report.to_dict()["source_pool"] == str((tmp_path / "pool").resolve())


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        ("evolution/fusion=band", {"fusion": "band", "band_cut": 0.5}),
        ("evolution/fusion=interpolate", {"fusion": "interpolate", "interpolation_weight": None}),
        ("evolution/fitness=sharing", {"fitness": "sharing"}),
        ("evolution/selection=tournament", {"selection": "tournament", "tournament_size": 3}),
    ],
)
def test_each_ablation_variant_switches_its_part_and_keeps_the_rest(tmp_path, variant, expected):
    default = evolve_settings(compose_config("evolve", ["pool=x"], tmp_path)).evolution
    changed = evolve_settings(compose_config("evolve", ["pool=x", variant], tmp_path)).evolution
    for key, value in expected.items():
        assert getattr(changed, key) == value
    differing = {k for k in default.__dataclass_fields__ if getattr(default, k) != getattr(changed, k)}
    assert differing <= set(expected)


def test_variants_of_different_parts_combine(tmp_path):
    cfg = compose_config("evolve", ["pool=x", "evolution/fusion=band", "evolution/selection=tournament"], tmp_path)
    settings = evolve_settings(cfg).evolution
    assert (settings.fusion, settings.selection, settings.fitness) == ("band", "tournament", "disagreement")


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ([], "starts from one source, but neither was given"),
        (["pool=a", "seed_model=b"], "starts from one source, but both were given"),
        (["pool=a", "evolution.population_size=0"], r"evolution\.population_size must be an integer >= 1"),
        (["pool=a", "evolution.fusion=zigzag"], r"Unknown evolution\.fusion 'zigzag'"),
        (["pool=a", "+evolution.bogus=1"], r"Unknown key\(s\) \['bogus'\] under evolution"),
        (["pool=a", "holdout=-3"], "holdout must be an integer >= 0"),
        (["pool=a", "granularity=pixel"], "Unknown granularity 'pixel'"),
    ],
)
def test_bad_config_values_say_what_is_wrong_before_any_work(tmp_path, overrides, match):
    with pytest.raises(ConfigError, match=match):
        evolve(compose_config("evolve", [*SMALL, *overrides], tmp_path))
    assert not (tmp_path / "history").exists()


def test_main_job_refuses_a_bad_evolution_value_before_training(tmp_path):
    from mge.cli.main import run as run_main

    cfg = compose_config("main", ["logger=none", "progress=false", "evolution.children=0"], tmp_path / "m")
    with pytest.raises(ConfigError, match=r"evolution\.children must be an integer >= 1"):
        run_main(cfg)
    assert not (tmp_path / "m" / "seed.safetensors").exists()  # nothing was trained
