"""Cross-pool lineage: members may name members of declared other pools as parents, resolved and checked on demand."""

import json

import pytest

from mge.errors import PoolError
from mge.pool import LineageRecord, NewMember, Pool, PoolWriter, lineage_parent
from tests.helpers import small_seed, write_pool


@pytest.fixture
def parent_pool(tmp_path):
    seed = small_seed("digits_cnn")
    return seed, write_pool(tmp_path / "parents", seed, rounds=1).finish({})


def child_pool(tmp_path, seed, parent_pool, parents, *, path=None):
    lineage = {"history": LineageRecord(path=path or "../parents", pool_hash=parent_pool.pool_hash())}
    targets = parent_pool.targets
    with PoolWriter.open(
        tmp_path / "child", kind="evolved", bases={"seed": seed}, targets=targets, config={}, lineage=lineage
    ) as writer:
        params = {k: v[:1].clone() for k, v in parent_pool.parameters([0]).items()}
        writer.append(params, [NewMember(operator="mutation", parents=parents, generation=1)])
        return writer.finish({})


def test_a_member_may_name_a_member_of_a_declared_lineage_pool_and_it_resolves(tmp_path, parent_pool):
    seed, parents = parent_pool
    child = child_pool(tmp_path, seed, parents, (lineage_parent("history", "m000002"),))
    reloaded = Pool.load(tmp_path / "child")
    assert reloaded.records[0].parents == ("history:m000002",)
    assert reloaded.manifest.lineage == child.manifest.lineage
    resolved = reloaded.lineage_pool("history")
    assert resolved.root.resolve() == (tmp_path / "parents").resolve()
    assert [r.id for r in resolved.records] == ["m000000", "m000001", "m000002"]
    absolute = child_pool(tmp_path / "abs", seed, parents, ("history:m000000",), path=str(tmp_path / "parents"))
    assert absolute.lineage_pool("history").pool_hash() == parents.pool_hash()


def test_a_parent_in_an_undeclared_pool_is_refused_on_append_and_on_load(tmp_path, parent_pool):
    seed, parents = parent_pool
    with pytest.raises(ValueError, match="unknown parents"):
        child_pool(tmp_path, seed, parents, ("elsewhere:m000000",))
    child_pool(tmp_path / "ok", seed, parents, ("history:m000000",))
    path = tmp_path / "ok" / "child" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["members"][0]["parents"] = ["elsewhere:m000000"]
    path.write_text(json.dumps(manifest))
    with pytest.raises(PoolError, match="unknown parents"):
        Pool.load(tmp_path / "ok" / "child")


def test_a_changed_lineage_pool_is_detected_when_resolved(tmp_path, parent_pool):
    seed, parents = parent_pool
    child_pool(tmp_path, seed, parents, ("history:m000000",))
    with PoolWriter.open(
        tmp_path / "parents", kind="mge", bases={"seed": seed}, targets=parents.targets, config={"n": 3}
    ) as writer:  # the parents' pool grows after the child recorded its hash
        writer.append(parents.parameters([0]), [NewMember(operator="mge", parents=("seed",))])
        writer.finish({})
    with pytest.raises(PoolError, match="hash differs"):
        Pool.load(tmp_path / "child").lineage_pool("history")
    with pytest.raises(PoolError, match="no lineage pool 'source'"):
        Pool.load(tmp_path / "child").lineage_pool("source")


def test_a_pool_is_resumed_only_under_the_same_lineage(tmp_path, parent_pool):
    seed, parents = parent_pool
    targets = parents.targets
    first = {"history": LineageRecord(path="../parents", pool_hash=parents.pool_hash())}
    PoolWriter.open(
        tmp_path / "c", kind="evolved", bases={"seed": seed}, targets=targets, config={}, lineage=first
    ).close()
    other = {"history": LineageRecord(path="../parents", pool_hash="0" * 64)}
    with pytest.raises(PoolError, match="other lineage pools"):
        PoolWriter.open(tmp_path / "c", kind="evolved", bases={"seed": seed}, targets=targets, config={}, lineage=other)
    writer = PoolWriter.open(
        tmp_path / "c", kind="evolved", bases={"seed": seed}, targets=targets, config={}, lineage=first
    )
    assert writer.resumed
    writer.close()


def test_a_malformed_lineage_names_the_problem(tmp_path, parent_pool):
    seed, parents = parent_pool
    child_pool(tmp_path, seed, parents, ("history:m000000",))
    path = tmp_path / "child" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["lineage"]["history"] = {"path": 3, "pool_hash": "x"}
    path.write_text(json.dumps(manifest))
    with pytest.raises(PoolError, match="lineage 'history'.*'path' must be str"):
        Pool.load(tmp_path / "child")
