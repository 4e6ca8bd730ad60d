"""What loads is what was written: confinement, verification, locking, and nothing overwritten or lost."""

import errno
import json
import multiprocessing as mp
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mge.errors import PoolError, PoolLockedError
from mge.pool import Pool, PoolWriter
from mge.pool.lock import LOCK_FILE
from tests.helpers import small_seed, write_pool


@pytest.fixture
def pool_dir(tmp_path: Path) -> Path:
    write_pool(tmp_path / "pool", small_seed()).finish({})
    return tmp_path / "pool"


def edit_manifest(pool_dir: Path, edit) -> None:
    path = pool_dir / "manifest.json"
    data = json.loads(path.read_text())
    data = edit(data) or data
    path.write_text(json.dumps(data))


# ----------------------------------------------------------------------------- confinement


@pytest.mark.parametrize(
    "name",
    ["../outside.safetensors", "/etc/passwd", "sub/shard.safetensors", ".hidden.safetensors", "shard.pt"],
)
def test_a_manifest_cannot_name_files_outside_the_pool(pool_dir, name):
    edit_manifest(pool_dir, lambda m: m["members"][0].update(shard=name))
    with pytest.raises(PoolError, match="plain .safetensors file names"):
        Pool.load(pool_dir)


def test_a_base_path_outside_the_pool_is_refused(pool_dir):
    edit_manifest(pool_dir, lambda m: m["bases"]["seed"].update(file="../base.safetensors"))
    with pytest.raises(PoolError, match="plain .safetensors file names"):
        Pool.load(pool_dir)


def test_a_symlink_out_of_the_pool_is_refused(pool_dir, tmp_path):
    outside = tmp_path / "elsewhere.safetensors"
    (pool_dir / "shard-00000.safetensors").rename(outside)
    (pool_dir / "shard-00000.safetensors").symlink_to(outside)
    with pytest.raises(PoolError, match="symbolic link"):
        Pool.load(pool_dir)


# ----------------------------------------------------------------------------- verification


def flip_a_byte(path: Path, from_end: int = 5) -> None:
    data = bytearray(path.read_bytes())
    data[-from_end] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_shard_is_detected_on_load_and_on_resume(pool_dir):
    flip_a_byte(pool_dir / "shard-00001.safetensors")
    with pytest.raises(PoolError, match="does not match its hash"):
        Pool.load(pool_dir)
    seed = small_seed()
    targets = [k for k in seed.state_dict if k.endswith(("weight", "bias"))]
    with pytest.raises(PoolError, match="does not match its hash"):
        PoolWriter.open(pool_dir, kind="mge", bases={"seed": seed}, targets=targets, config={"n": 6})


def test_a_flipped_byte_in_the_base_is_detected(pool_dir):
    flip_a_byte(pool_dir / "base.safetensors")
    with pytest.raises(PoolError, match="Base .* does not match its hash"):
        Pool.load(pool_dir)


def test_a_nan_member_is_refused_even_with_a_matching_hash(pool_dir):
    from mge.pool.files import tensor_hash

    shard = pool_dir / "shard-00000.safetensors"
    tensors = load_file(shard)
    name = next(iter(tensors))
    tensors[name][0].view(-1)[0] = float("nan")
    save_file(tensors, shard)
    member = {k: v[0] for k, v in tensors.items()}
    edit_manifest(pool_dir, lambda m: m["members"][0].update(sha256=tensor_hash(member)))
    with pytest.raises(ValueError, match=r"member m000000 of pool .* non-finite"):
        Pool.load(pool_dir)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda t, k: t[k].to(torch.int8), "int8"),
        (lambda t, k: t[k][:, :1], "expected torch.float32"),
        (lambda t, k: t[k][:1], r"\(>= 3"),
    ],
)
def test_shard_tensors_must_have_the_architectures_shapes_and_dtypes(pool_dir, change, match):
    shard = pool_dir / "shard-00000.safetensors"
    tensors = load_file(shard)
    name = next(iter(tensors))
    tensors[name] = change(tensors, name).contiguous()
    save_file(tensors, shard)
    with pytest.raises(PoolError, match=match):
        Pool.load(pool_dir)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: [m], "must hold a JSON object, got list"),
        (lambda m: m.pop("members") and None, "has no 'members'"),
        (lambda m: m.update(members={"a": 1}), "'members' must be list"),
        (lambda m: m["members"][0].pop("sha256") and None, "member 0 has no 'sha256'"),
        (lambda m: m["members"][0].update(index="0"), "'index' must be int"),
        (lambda m: m["members"][0].update(index=-1), "'index' must be >= 0"),
        (lambda m: m["members"][0].update(index=99), r"\(>= 100"),
        (lambda m: m["members"][1].update(parents=["m999999"]), "unknown parents"),
        (lambda m: m["members"][0].update(base="other"), "does not list"),
        (lambda m: m["members"][0].update(threshold="high"), "finite number or null"),
        (lambda m: m.update(format="mge-pool/9"), "mge-pool/9"),
        (lambda m: m.update(kind="zoo"), "unknown pool kind"),
        (lambda m: m.update(targets=[]), "non-empty list"),
        (lambda m: m["architecture"].pop("arch") and None, "architecture has no 'arch'"),
    ],
)
def test_a_malformed_manifest_names_the_problem(pool_dir, edit, match):
    edit_manifest(pool_dir, edit)
    with pytest.raises(PoolError, match=match):
        Pool.load(pool_dir)


def test_a_deeply_nested_or_truncated_manifest_names_the_problem(pool_dir):
    path = pool_dir / "manifest.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PoolError, match="nested too deeply|must hold a JSON object"):
        Pool.load(pool_dir)
    path.write_text("null")
    with pytest.raises(PoolError, match="must hold a JSON object, got NoneType"):
        Pool.load(pool_dir)
    path.write_text('{"format": "mge-pool/2", "kind": ')
    with pytest.raises(PoolError, match="not valid JSON"):
        Pool.load(pool_dir)


# ----------------------------------------------------------------------------- nothing overwritten


def test_a_folder_with_files_but_no_manifest_is_never_overwritten(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "base.safetensors").write_bytes(b"my own file")
    seed = small_seed()
    with pytest.raises(PoolError, match="not a pool"):
        PoolWriter.open(mine, kind="mge", bases={"seed": seed}, targets=["head.weight"], config={})
    assert (mine / "base.safetensors").read_bytes() == b"my own file"


def test_an_existing_file_given_as_the_pool_folder_is_refused(tmp_path):
    path = tmp_path / "pool"
    path.write_text("a file")
    with pytest.raises(PoolError, match="existing file"):
        PoolWriter.open(path, kind="mge", bases={"seed": small_seed()}, targets=["head.weight"], config={})


def test_leftover_temporary_files_of_an_interrupted_write_are_cleaned_on_resume(tmp_path):
    writer = write_pool(tmp_path / "pool", small_seed(), rounds=1)
    writer.close()
    leftover = tmp_path / "pool" / ".shard-00001.safetensors.abc123.tmp"
    leftover.write_bytes(b"half a shard")
    seed = small_seed()
    targets = [k for k in seed.state_dict if k.endswith(("weight", "bias"))]
    PoolWriter.open(tmp_path / "pool", kind="mge", bases={"seed": seed}, targets=targets, config={"n": 3}).close()
    assert not leftover.exists()


def test_a_full_disk_fails_the_write_and_leaves_the_pool_resumable(tmp_path, monkeypatch):
    import mge.pool.files as files

    seed = small_seed()
    writer = write_pool(tmp_path / "pool", seed, rounds=1)
    real_save = files.save_file

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "save_file", disk_full)
    targets = writer.manifest.targets
    from mge.pool import NewMember

    with pytest.raises(OSError, match="No space left"):
        writer.append({k: seed.state_dict[k][None] for k in targets}, [NewMember(operator="mge", parents=("seed",))])
    writer.close()
    monkeypatch.setattr(files, "save_file", real_save)
    assert not list((tmp_path / "pool").glob("*.tmp")) and not list((tmp_path / "pool").glob(".*.tmp"))
    with PoolWriter.open(tmp_path / "pool", kind="mge", bases={"seed": seed}, targets=targets, config={"n": 3}) as w:
        assert w.resumed and len(w.members) == 3 and w.state == {"round": 0}


# ----------------------------------------------------------------------------- one writer at a time


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    writer = write_pool(tmp_path / "pool", small_seed(), rounds=1)
    seed = small_seed()
    targets = writer.manifest.targets
    with pytest.raises(PoolLockedError, match=rf"pid {os.getpid()}"):
        PoolWriter.open(tmp_path / "pool", kind="mge", bases={"seed": seed}, targets=targets, config={"n": 3})
    writer.close()
    PoolWriter.open(tmp_path / "pool", kind="mge", bases={"seed": seed}, targets=targets, config={"n": 3}).close()


def test_a_stale_lock_of_a_killed_process_does_not_block_a_resume(tmp_path):
    write_pool(tmp_path / "pool", small_seed(), rounds=1).close()
    (tmp_path / "pool" / LOCK_FILE).write_text(json.dumps({"pid": 999999, "host": "gone", "since": "long ago"}))
    seed = small_seed()
    targets = [k for k in seed.state_dict if k.endswith(("weight", "bias"))]
    with PoolWriter.open(tmp_path / "pool", kind="mge", bases={"seed": seed}, targets=targets, config={"n": 3}) as w:
        assert w.resumed


def _write_concurrently(root: str, n: int, barrier, results) -> None:
    try:
        barrier.wait()
        writer = write_pool(Path(root), small_seed(), rounds=2, per_round=n, config={"n": n})
        writer.finish({})
        results.put(("ok", n))
    except PoolError as err:  # locked, or a pool of the other config already there
        results.put(("refused", type(err).__name__))
    except BaseException as err:  # anything else fails the test with its reason, not with a timeout
        results.put(("error", repr(err)))


def test_two_writers_started_together_exactly_one_proceeds_and_the_pool_stays_valid(tmp_path):
    ctx = mp.get_context("spawn")  # fork after torch's thread pools started can hang the child
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_write_concurrently, args=(str(tmp_path / "pool"), n, barrier, results)) for n in (2, 3)
    ]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    assert [o[0] for o in outcomes] == ["ok", "refused"]
    winner = next(o[1] for o in outcomes if o[0] == "ok")
    pool = Pool.load(tmp_path / "pool")  # verified: no mixed shards
    assert len(pool) == 2 * winner and pool.manifest.config == {"n": winner}
