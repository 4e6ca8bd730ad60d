"""experiments/t5_fallback_pools.py: matched noise and stacked independent seeds, as pools T5 can load."""

import importlib.util
from dataclasses import replace

import pytest
import torch

from mge.evaluation import relative_l2_per_tensor
from mge.pool import Pool, load_seed, save_seed
from mge.runs import load_pools
from tests.helpers import REPO_ROOT, write_noise_pool


@pytest.fixture(scope="module")
def script():
    path = REPO_ROOT / "experiments" / "t5_fallback_pools.py"
    spec = importlib.util.spec_from_file_location("t5_fallback_pools", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_noise_pool_sits_at_the_reference_pools_distances_member_by_member_and_tensor_by_tensor(
    script, digits_seed_dir, tmp_path
):
    reference = Pool.load(write_noise_pool(tmp_path / "mge", load_seed(digits_seed_dir), 4, 0.1, rng_seed=1))
    noise = script.noise_pool(reference, tmp_path / "noise", seed=0)
    seed = {k: reference.seed.state_dict[k] for k in reference.targets}
    want, got = relative_l2_per_tensor(reference.parameters(), seed), relative_l2_per_tensor(noise.parameters(), seed)
    for name in reference.targets:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-6)
    assert noise.kind == "noise" and len(noise) == 4
    assert not torch.equal(noise.parameters()["head.weight"], reference.parameters()["head.weight"])


def test_the_independent_pool_carries_each_runs_full_state_on_the_reference_seeds_base(
    script, digits_seed_dir, tmp_path
):
    reference = Pool.load(write_noise_pool(tmp_path / "mge", load_seed(digits_seed_dir), 2, 0.1, rng_seed=1))
    seed = load_seed(digits_seed_dir)
    runs = []
    for i in range(2):  # two "trainings": the seed's weights moved, its metadata (split) kept
        other = replace(seed, state_dict={k: v + 0.01 * (i + 1) for k, v in seed.state_dict.items()})
        runs.append(str(save_seed(other, tmp_path / f"run{i}.safetensors")))
    pool = script.independent_pool(reference, tmp_path / "independent", runs)
    assert pool.kind == "independent" and pool.seed.state_dict.keys() == seed.state_dict.keys()
    for i, run in enumerate(runs):
        assert all(torch.equal(pool.state_dict(i)[k], v) for k, v in load_seed(run).state_dict.items())
    assert list(load_pools({"MGE": reference.root, "independent": pool.root})) == ["MGE", "independent"]
