"""A pool's ensemble, streamed shard by shard, equals the ensemble of its members' logits held at once."""

import pytest
import torch

from mge.evaluation import batched_logits, ensemble_metrics
from mge.evaluation.pool_eval import evaluate_pool_ensemble
from mge.pool import PoolWriter
from tests.helpers import small_seed, write_pool


def test_streamed_pool_ensemble_equals_the_ensemble_of_all_logits(tmp_path):
    seed = small_seed("digits_cnn")
    pool = write_pool(tmp_path / "pool", seed, rounds=2, per_round=3).finish({})  # two shards
    x, y = torch.randn(50, 1, 8, 8), torch.randint(0, 10, (50,))
    logits = batched_logits(seed.build(), pool.parameters(), x)
    want, want_curve = ensemble_metrics(logits, y, orderings=2)
    got, curve = evaluate_pool_ensemble(pool, x, y, orderings=2, models_per_chunk=2)
    assert got.members == 6
    for key, value in want.to_dict().items():
        assert got.to_dict()[key] == pytest.approx(value, abs=1e-9)
    assert curve is not None and want_curve is not None
    torch.testing.assert_close(curve.soft_vote_accuracy, want_curve.soft_vote_accuracy)
    assert evaluate_pool_ensemble(pool, x, y, orderings=0)[1] is None


def test_an_empty_pool_has_no_ensemble(tmp_path):
    seed = small_seed("digits_cnn")
    targets = [k for k in seed.state_dict if k.endswith("weight")]
    with PoolWriter.open(tmp_path / "p", kind="mge", bases={"seed": seed}, targets=targets, config={}) as writer:
        pool = writer.finish({})
    with pytest.raises(ValueError, match="empty"):
        evaluate_pool_ensemble(pool, torch.randn(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
