"""Format-1 pools (written before pool format 2) still load, verified, with the same member tensors."""

import json
from pathlib import Path

import pytest
import torch

from mge.errors import PoolError
from mge.pool import Pool, PoolWriter, SeedModel, save_seed
from mge.pool.files import atomic_save_safetensors, file_hash, tensor_hash
from tests.helpers import small_seed


def write_v1_pool(root: Path, seed: SeedModel, seed_file: Path, members: dict[str, torch.Tensor]) -> None:
    """The layout the format-1 PoolWriter wrote: one base copied from the seed, flat records, ``rounds``."""
    root.mkdir(parents=True)
    atomic_save_safetensors(seed.state_dict, root / "base.safetensors", {"mge_seed": json.dumps(seed.header())})
    atomic_save_safetensors(members, root / "shard-00000.safetensors", {"format": "mge-pool/1"})
    n = next(iter(members.values())).shape[0]
    records = [
        {"id": f"m{i:06d}", "shard": "shard-00000.safetensors", "index": i, "parents": ["seed"], "operator": "mge",
         "round": 0, "threshold": 0.98, "alpha": 1.0, "distribution_distance": 0.05,
         "discriminator_accuracy": 0.97, "sha256": tensor_hash({k: v[i] for k, v in members.items()})}
        for i in range(n)
    ]  # fmt: skip
    manifest = {
        "format": "mge-pool/1",
        "seed": {"path": str(seed_file), "sha256": file_hash(seed_file), "meta": seed.meta},
        "architecture": seed.header(),
        "config": {"seed": 0},
        "targets": list(members),
        "members": records,
        "rounds": [{"round": 0, "accepted": n}],
        "state": {"rng": "", "threshold": 0.98, "alpha": 1.0},
        "finished": True,
        "summary": {"accepted": n},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))


@pytest.fixture
def v1_pool(tmp_path):
    seed = small_seed()
    seed_file = save_seed(seed, tmp_path / "seed.safetensors")
    g = torch.Generator().manual_seed(0)
    members = {k: v + 0.01 * torch.randn(3, *v.shape, generator=g) for k, v in seed.state_dict.items()}
    write_v1_pool(tmp_path / "pool", seed, seed_file, members)
    return tmp_path / "pool", members


def test_a_format_1_pool_loads_with_the_same_member_tensors_and_hashes(v1_pool):
    root, members = v1_pool
    pool = Pool.load(root)
    assert pool.manifest.upgraded_from == "mge-pool/1" and pool.kind == "mge"
    stacked = pool.parameters()
    assert all(torch.equal(stacked[k], v) for k, v in members.items())
    assert [r.sha256 for r in pool.records] == [tensor_hash({k: v[i] for k, v in members.items()}) for i in range(3)]
    record = pool.records[0]
    assert record.parents == ("seed",) and record.generation == 0 and record.threshold == 0.98
    assert record.scores == {"distribution_distance": 0.05, "discriminator_accuracy": 0.97}


def test_a_format_1_base_is_checked_against_the_seed_hash_it_recorded(v1_pool):
    root, _ = v1_pool
    data = bytearray((root / "base.safetensors").read_bytes())
    data[-2] ^= 0xFF
    (root / "base.safetensors").write_bytes(bytes(data))
    with pytest.raises(PoolError, match="does not match the seed hash"):
        Pool.load(root)


def test_a_format_1_pool_is_read_but_not_continued(v1_pool):
    root, members = v1_pool
    with pytest.raises(PoolError, match="can be read but not continued"):
        PoolWriter.open(root, kind="mge", bases={"seed": small_seed()}, targets=list(members), config={"seed": 0})
