"""Pools on disk: atomic, hashed, resumable, identical after a round trip, never unpickled."""

import json
import pickle

import pytest
import torch

from mge.evaluation import predict_batched
from mge.pool import Pool, PoolWriter, SeedModel, load_seed, save_seed
from mge.pool.files import tensor_hash


@pytest.fixture
def seed() -> SeedModel:
    from mge.models import build_model

    torch.manual_seed(0)
    model = build_model("lenet5", num_classes=10, in_channels=1, image_size=28)
    return SeedModel("lenet5", {}, 10, 1, 28, model.state_dict(), {"dataset": "test"})


def write_pool(root, seed, rounds=2, per_round=3):
    targets = [k for k in seed.state_dict if k.endswith(("weight", "bias"))]
    writer = PoolWriter(root, seed, targets, config={"n": 6}, seed_reference={"path": "x", "sha256": "abc"})
    g = torch.Generator().manual_seed(1)
    for r in range(rounds):
        params = {
            k: seed.state_dict[k] + 0.01 * torch.randn(per_round, *seed.state_dict[k].shape, generator=g)
            for k in targets
        }
        records = [{"parents": ["seed"], "operator": "mge", "round": r}] * per_round
        writer.append(params, records, {"round": r}, {"round": r})
    return writer


def test_written_and_loaded_pool_gives_identical_predictions(tmp_path, seed):
    writer = write_pool(tmp_path / "pool", seed)
    pool = writer.finish({"accepted": 6})
    assert len(pool) == 6
    x = torch.randn(20, 1, 28, 28)
    params = pool.parameters()
    reloaded = Pool.load(tmp_path / "pool")  # verifies every hash
    assert reloaded.pool_hash() == pool.pool_hash()
    for i in range(len(pool)):
        expected = predict_batched(seed.build(), {k: v[i : i + 1] for k, v in params.items()}, x)[0]
        assert torch.equal(reloaded.model(i)(x).argmax(-1), expected)
    assert [m.record["id"] for m in reloaded] == [f"m{i:06d}" for i in range(6)]


def test_no_temporary_files_are_left_behind(tmp_path, seed):
    write_pool(tmp_path / "pool", seed).finish({})
    assert not [p for p in (tmp_path / "pool").iterdir() if p.name.endswith(".tmp")]


def test_tampered_shard_fails_verification(tmp_path, seed):
    pool = write_pool(tmp_path / "pool", seed).finish({})
    manifest = json.loads((tmp_path / "pool" / "manifest.json").read_text())
    manifest["members"][0]["sha256"] = tensor_hash({"other": torch.zeros(1)})
    (tmp_path / "pool" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="does not match its hash"):
        Pool.load(tmp_path / "pool")
    assert len(pool) == 6


def test_corrupt_shard_gives_a_clear_error(tmp_path, seed):
    write_pool(tmp_path / "pool", seed).finish({})
    shard = tmp_path / "pool" / "shard-00000.safetensors"
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(ValueError, match="corrupt or not safetensors"):
        Pool.load(tmp_path / "pool")


def test_resuming_with_a_different_config_or_seed_is_refused(tmp_path, seed):
    write_pool(tmp_path / "pool", seed, rounds=1)
    with pytest.raises(ValueError, match=r"different config \(n differ\)"):
        PoolWriter(tmp_path / "pool", seed, ["head.weight"], config={"n": 7}, seed_reference={"sha256": "abc"})
    with pytest.raises(ValueError, match="another seed"):
        PoolWriter(tmp_path / "pool", seed, ["head.weight"], config={"n": 6}, seed_reference={"sha256": "def"})
    resumed = PoolWriter(tmp_path / "pool", seed, ["head.weight"], config={"n": 6}, seed_reference={"sha256": "abc"})
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
    with pytest.raises(ValueError, match="non-finite values in 'head.bias'"):
        save_seed(seed, path)


def test_missing_pool_and_missing_seed_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        Pool.load(tmp_path)
    with pytest.raises(FileNotFoundError, match="seed.safetensors"):
        load_seed(tmp_path)
