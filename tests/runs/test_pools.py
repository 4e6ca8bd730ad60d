"""Pools are compared only when they share an architecture and a dataset split."""

import pytest

from mge.errors import ConfigError, PoolError
from mge.runs import comparison_datamodule, load_pools
from tests.helpers import small_seed, write_pool

DIGITS = {"name": "digits", "root": "data", "split_seed": 0, "discriminator_size": 300, "classes": None}


def pool_of(tmp_path, name, arch="digits_cnn", data=DIGITS, seed=0):
    s = small_seed(arch, seed=seed)
    s.meta["data"] = dict(data)
    write_pool(tmp_path / name, s).finish({})
    return tmp_path / name


def test_pools_of_one_architecture_and_split_load_together_with_their_data(tmp_path):
    pools = load_pools({"MGE": pool_of(tmp_path, "a"), "noise": pool_of(tmp_path, "b", seed=1)})
    assert list(pools) == ["MGE", "noise"] and len(pools["noise"]) == 6
    datamodule = comparison_datamodule(pools)
    assert datamodule.name == "digits" and datamodule.discriminator_size == 300


@pytest.mark.parametrize(
    ("other", "match"),
    [
        ({"arch": "mlp"}, "arch differ"),
        ({"data": {**DIGITS, "split_seed": 1}}, r"data\.split_seed differ"),
        ({"data": {**DIGITS, "classes": [0, 1, 2, 3, 4]}}, r"data\.classes differ"),
    ],
)
def test_pools_that_cannot_be_compared_are_refused_naming_what_differs(tmp_path, other, match):
    with pytest.raises(ConfigError, match=match):
        load_pools({"MGE": pool_of(tmp_path, "a"), "other": pool_of(tmp_path, "b", **other)})


def test_no_pool_or_a_seed_without_its_data_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one"):
        load_pools({})
    write_pool(tmp_path / "bare", small_seed()).finish({})
    with pytest.raises(PoolError, match="does not record its dataset"):
        comparison_datamodule(load_pools({"bare": tmp_path / "bare"}))
