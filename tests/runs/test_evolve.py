"""The E-MGE stage on a digits seed: pools with resolvable lineage, gated children, exact resume, held-out split."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mge.errors import PoolError
from mge.evolution import EvolutionSettings
from mge.generator import GeneratorSettings
from mge.pool import Pool
from mge.runs import GenerateSettings, generate_pool
from mge.runs.evolve import EvolveSettings, FromPool, FromSeed, evolve_population

SMALL = EvolutionSettings(population_size=8, children=8, generations=3, fusion_probability=0.7)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: on the 2 shared cores of the dev box, more threads ran many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_generate(pool_dir: Path, n: int = 10) -> GenerateSettings:
    return GenerateSettings(
        generator=GeneratorSettings(n_models=n, batch_size=16, max_rounds=10),
        pool_dir=pool_dir,
        time_probe_steps=1,
    )


@pytest.fixture(scope="module")
def mge_pool(digits_seed_dir, tmp_path_factory) -> Path:
    """An MGE pool of 10 from the digits seed: the initial population."""
    pool_dir = tmp_path_factory.mktemp("mge") / "pool"
    generate_pool(small_generate(pool_dir), digits_seed_dir)
    return pool_dir


def settings(root: Path, **changes) -> EvolveSettings:
    base = EvolveSettings(
        evolution=SMALL, population_dir=root / "population", history_dir=root / "history", time_probe_steps=1
    )
    return replace(base, **changes)


def test_evolution_writes_the_final_population_and_its_history_with_resolvable_lineage(tmp_path, mge_pool):
    entries = []
    report = evolve_population(settings(tmp_path), FromPool(mge_pool), on_generation=entries.append)
    population, history, source = (
        Pool.load(tmp_path / "population"),
        Pool.load(tmp_path / "history"),
        Pool.load(mge_pool),
    )
    assert population.kind == history.kind == "evolved" and len(population) == SMALL.population_size
    assert population.pool_hash() == report.population_hash and history.pool_hash() == report.history_hash

    # the history holds the initial members (parents in the source pool), then each generation's survivors
    initial = [r for r in history.records if r.generation == 0]
    assert [r.parents for r in initial] == [(f"source:{r.id}",) for r in source.records]
    assert all(r.operator == "initial" for r in initial)
    ids = {r.id for r in history.records}
    children = [r for r in history.records if r.generation > 0]
    assert children, "no child survived a selection: the checks below would test nothing"
    for r in children:
        assert set(r.parents) <= ids and len(r.parents) == (1 if r.operator == "mutation" else 2)
        assert r.scores["discriminator_accuracy"] >= report.discriminator_accuracy_bound  # gated

    # the final population's members are history members, and their parents resolve through the lineage
    assert population.lineage_pool("history").pool_hash() == history.pool_hash()
    assert population.lineage_pool("source").pool_hash() == source.pool_hash()
    by_id = {r.id: r for r in history.records}
    own = population.manifest.summary["history_ids"]
    for record, history_id in zip(population.records, own, strict=True):
        assert record.sha256 == by_id[history_id].sha256 and record.operator == by_id[history_id].operator
        for parent in record.parents:
            name, member = parent.split(":")
            assert member in {r.id for r in (history if name == "history" else source).records}

    # the budget in generations and forward passes, logged per generation
    metrics = report.to_dict()
    assert [e["generation"] for e in entries] == [0, 1, 2, 3] and report.history == entries
    assert metrics["generations"] == 3 and metrics["forward_passes"] == sum(e["forward_passes"] for e in entries)
    assert entries[-1]["total_forward_passes"] == metrics["forward_passes"]
    assert metrics["candidates"] == 3 * SMALL.children and metrics["test"]["accuracy"]["mean"] > 0.5
    assert metrics["test_ensemble"]["members"] == SMALL.population_size and metrics["time_ratio"] > 0


def test_an_interrupted_run_resumes_to_the_same_final_pool(tmp_path, mge_pool, monkeypatch):
    reference = evolve_population(settings(tmp_path / "ref", evaluate_test=False), FromPool(mge_pool))

    import mge.pool.store as store

    real_checkpoint = store.PoolWriter.checkpoint
    calls = {"n": 0}

    def crash_after_generation_1(self, *args, **kwargs):
        real_checkpoint(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:  # generation 0 (the initial population), then generation 1
            raise KeyboardInterrupt

    monkeypatch.setattr(store.PoolWriter, "checkpoint", crash_after_generation_1)
    with pytest.raises(KeyboardInterrupt):
        evolve_population(settings(tmp_path / "crash", evaluate_test=False), FromPool(mge_pool))
    monkeypatch.setattr(store.PoolWriter, "checkpoint", real_checkpoint)
    assert not (tmp_path / "crash" / "population").exists()
    assert Pool.load(tmp_path / "crash" / "history").manifest.state["evolution"]["generation"] == 1

    resumed = evolve_population(settings(tmp_path / "crash", evaluate_test=False), FromPool(mge_pool))
    assert resumed.population_hash == reference.population_hash
    assert resumed.history_hash == reference.history_hash
    assert resumed.state.members == reference.state.members
    assert resumed.state.forward_passes == reference.state.forward_passes  # nothing recomputed, nothing recounted
    again = evolve_population(settings(tmp_path / "crash", evaluate_test=False), FromPool(mge_pool))
    assert again.population_hash == reference.population_hash  # a finished run is read back, not extended


def test_held_out_examples_stay_out_of_evolution_and_score_the_result(tmp_path, mge_pool):
    report = evolve_population(settings(tmp_path, holdout=100, evaluate_test=False), FromPool(mge_pool))
    metrics = report.to_dict()
    assert metrics["evolution_examples"] == 300 - 100 and metrics["held_out_examples"] == 100
    assert metrics["test"] is None and metrics["test_ensemble"] is None  # the test set stayed unseen
    held = metrics["held_out"]
    assert held["examples"] == 100 and 0.5 < held["accuracy"]["mean"] <= 1.0
    assert held["ensemble"]["members"] == SMALL.population_size
    other = evolve_population(settings(tmp_path / "b", evaluate_test=False), FromPool(mge_pool))
    assert other.population_hash != report.population_hash  # a different split: another run


def test_a_run_from_a_seed_generates_its_initial_pool_first(tmp_path, digits_seed_dir):
    source = FromSeed(digits_seed_dir, small_generate(tmp_path / "mge", n=8))
    report = evolve_population(settings(tmp_path, evaluate_test=False), source)
    assert report.generation is not None and len(Pool.load(tmp_path / "mge")) == 8
    assert report.to_dict()["time_ratio_with_mge"] > report.to_dict()["time_ratio"]


def test_a_pool_started_under_other_settings_is_not_resumed(tmp_path, mge_pool):
    evolve_population(settings(tmp_path, evaluate_test=False), FromPool(mge_pool))
    changed = replace(SMALL, diversity_weight=2.0)
    with pytest.raises(PoolError, match=r"evolution\.diversity_weight differ"):
        evolve_population(settings(tmp_path, evolution=changed, evaluate_test=False), FromPool(mge_pool))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"holdout": -1}, "holdout must be an integer >= 0"),
        ({"granularity": "pixel"}, "Unknown granularity 'pixel'"),
        ({"device": "tpu"}, "Unknown device"),
        ({"time_probe_steps": 0}, "time_probe_steps"),
    ],
)
def test_bad_settings_name_the_field(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        settings(tmp_path, **changes)


def test_a_holdout_as_large_as_the_split_is_refused(tmp_path, mge_pool):
    with pytest.raises(ValueError, match="holdout=300 leaves no discriminator example"):
        evolve_population(settings(tmp_path, holdout=300), FromPool(mge_pool))
