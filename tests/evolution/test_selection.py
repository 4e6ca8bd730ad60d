"""Selection keeps the elite; tournaments are seeded and never pick a member twice."""

import pytest
import torch

from mge.evolution import elitist, select, tournament


def test_elitist_selection_keeps_the_best_mu_fittest_first():
    fit = torch.tensor([0.2, 0.9, 0.5, 0.9, 0.1, 0.7])
    assert elitist(fit, 3).tolist() == [1, 3, 5]  # the tie goes to the lower index (a parent)
    assert elitist(fit, 10).tolist() == [1, 3, 5, 2, 0, 4]


def test_tournament_is_seeded_and_picks_distinct_members():
    fit = torch.rand(20, generator=torch.Generator().manual_seed(0))
    one = tournament(fit, 8, size=3, generator=torch.Generator().manual_seed(1))
    two = tournament(fit, 8, size=3, generator=torch.Generator().manual_seed(1))
    other = [tournament(fit, 8, size=3, generator=torch.Generator().manual_seed(s)).tolist() for s in range(2, 6)]
    assert one.tolist() == two.tolist()
    assert any(o != one.tolist() for o in other)
    assert len(set(one.tolist())) == 8


def test_tournament_favours_the_fit_and_its_size_sets_the_pressure():
    fit = torch.arange(30, dtype=torch.float64)
    picked = {
        size: torch.cat([tournament(fit, 5, size=size, generator=torch.Generator().manual_seed(s)) for s in range(20)])
        for size in (1, 2, 8, 30)
    }
    means = [picked[s].double().mean().item() for s in (1, 2, 8, 30)]
    assert means == sorted(means) and means[-1] == pytest.approx(27.0)  # size 30: always the top 5


def test_select_dispatches_and_rejects_unknown_kinds():
    fit = torch.tensor([0.1, 0.3, 0.2])
    g = torch.Generator()
    assert select(fit, 2, kind="elitist", tournament_size=2, generator=g).tolist() == [1, 2]
    assert select(fit, 3, kind="tournament", tournament_size=3, generator=g).tolist() == [1, 2, 0]
    with pytest.raises(ValueError, match="'roulette'.*elitist.*tournament"):
        select(fit, 2, kind="roulette", tournament_size=2, generator=g)  # type: ignore[arg-type]
