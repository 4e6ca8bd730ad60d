"""Pools on disk: written and read back identically, hashed by content, resumable, never unpickled."""

import json
import pickle

import pytest
import torch

from mge.errors import PoolError
from mge.evaluation import predict_batched
from mge.pool import NewMember, Pool, PoolWriter, load_seed, save_seed
from tests.helpers import small_seed, write_pool


@pytest.fixture
def seed():
    return small_seed("lenet5")


def test_written_and_loaded_pool_gives_identical_predictions(tmp_path, seed):
    pool = write_pool(tmp_path / "pool", seed).finish({"kept": 6})
    assert len(pool) == 6
    x = torch.randn(20, 1, 28, 28)
    params = pool.parameters()
    reloaded = Pool.load(tmp_path / "pool")  # verifies every hash
    assert reloaded.pool_hash() == pool.pool_hash()
    for i in range(len(pool)):
        expected = predict_batched(seed.build(), {k: v[i : i + 1] for k, v in params.items()}, x)[0]
        assert torch.equal(reloaded.model(i)(x).argmax(-1), expected)
    assert [m.record.id for m in reloaded] == [f"m{i:06d}" for i in range(6)]
    assert [r.generation for r in reloaded.records] == [0, 0, 0, 1, 1, 1]
    assert reloaded.records[0].parents == ("seed",)


def test_append_returns_ids_and_members_join_the_pool_only_at_the_checkpoint(tmp_path, seed):
    writer = write_pool(tmp_path / "pool", seed, rounds=1)
    targets = writer.manifest.targets
    ids = writer.append(
        {k: seed.state_dict[k][None].clone() for k in targets}, [NewMember(operator="x", parents=("m000000",))]
    )
    assert ids == ["m000003"]
    assert len(Pool.load(tmp_path / "pool")) == 3  # not yet committed
    writer.checkpoint({"round": 1})
    assert len(Pool.load(tmp_path / "pool")) == 4
    assert Pool.load(tmp_path / "pool").records[3].parents == ("m000000",)
    writer.close()


def test_members_may_carry_their_own_full_tensors_and_pools_may_have_several_bases(tmp_path):
    a, b = small_seed("digits_cnn", seed=1), small_seed("digits_cnn", seed=2)
    names = list(a.state_dict)
    with PoolWriter.open(
        tmp_path / "pool", kind="independent", bases={"a": a, "b": b}, targets=names, config={}
    ) as writer:
        stacked = {k: torch.stack([a.state_dict[k], b.state_dict[k]]) for k in names}
        writer.append(stacked, [NewMember(operator="independent", parents=(), base=n) for n in ("a", "b")])
        pool = writer.finish({})
    assert sorted(p.name for p in (tmp_path / "pool").glob("base*")) == ["base-a.safetensors", "base-b.safetensors"]
    for i, source in enumerate((a, b)):
        assert all(torch.equal(pool.state_dict(i)[k], v) for k, v in source.state_dict.items())


def test_the_pool_hash_is_a_content_hash(tmp_path, seed):
    one = write_pool(tmp_path / "one", seed).finish({"anything": 1})
    two = write_pool(tmp_path / "two", seed, config={"other": "config"}).finish({})
    assert one.pool_hash() == two.pool_hash()  # same tensors, other records and config
    other_seed = write_pool(tmp_path / "three", small_seed("lenet5", seed=5)).finish({})
    assert other_seed.pool_hash() != one.pool_hash()


def test_no_temporary_files_are_left_behind_and_files_follow_the_umask(tmp_path, seed):
    import os

    old = os.umask(0o022)
    try:
        write_pool(tmp_path / "pool", seed).finish({})
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "pool").iterdir() if p.name != ".lock"]
    assert not [p for p in files if p.name.endswith(".tmp")]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(0o644)}


def test_resuming_with_a_different_config_or_seed_is_refused_and_the_same_is_continued(tmp_path, seed):
    write_pool(tmp_path / "pool", seed, rounds=1).close()
    targets = [k for k in seed.state_dict if k.endswith(("weight", "bias"))]
    kwargs = {"kind": "mge", "targets": targets}
    with pytest.raises(PoolError, match=r"different config \(n differ\)"):
        PoolWriter.open(tmp_path / "pool", bases={"seed": seed}, config={"n": 7}, **kwargs)
    with pytest.raises(PoolError, match="other base models"):
        PoolWriter.open(tmp_path / "pool", bases={"seed": small_seed("lenet5", seed=9)}, config={"n": 3}, **kwargs)
    with PoolWriter.open(tmp_path / "pool", bases={"seed": seed}, config={"n": 3}, **kwargs) as resumed:
        assert resumed.resumed and len(resumed.members) == 3 and resumed.state == {"round": 0}


def test_pickle_files_are_refused(tmp_path, seed):
    bad = tmp_path / "seed.ckpt"
    with open(bad, "wb") as f:
        pickle.dump({"state_dict": seed.state_dict}, f)
    with pytest.raises(ValueError, match="Refusing to unpickle"):
        load_seed(bad)
    with pytest.raises(ValueError, match="Pickled pools are refused"):
        Pool.load(bad)
    # a pickle renamed to .safetensors is not read as one either
    disguised = tmp_path / "seed.safetensors"
    disguised.write_bytes(bad.read_bytes())
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_seed(disguised)


def test_seed_round_trip_and_nan_weights_are_rejected(tmp_path, seed):
    path = save_seed(seed, tmp_path / "seed.safetensors")
    back = load_seed(tmp_path)  # a run folder works too
    assert back.arch == "lenet5" and back.meta == {"dataset": "test"}
    assert all(torch.equal(back.state_dict[k], v) for k, v in seed.state_dict.items())
    seed.state_dict["head.bias"][0] = float("nan")
    with pytest.raises(ValueError, match=r"Seed .* non-finite values \(NaN or inf\) in 'head.bias'"):
        save_seed(seed, path)


def test_missing_pool_and_missing_seed_name_the_path(tmp_path):
    with pytest.raises(PoolError, match="manifest.json"):
        Pool.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        Pool.load(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="seed.safetensors"):
        load_seed(tmp_path)


def test_the_manifest_is_strict_json(tmp_path, seed):
    writer = write_pool(tmp_path / "pool", seed, rounds=1)
    with pytest.raises(ValueError, match="not JSON compliant"):
        writer.checkpoint({"threshold": float("nan")})
    writer.close()
    json.loads((tmp_path / "pool" / "manifest.json").read_text(), parse_constant=lambda c: pytest.fail(c))
