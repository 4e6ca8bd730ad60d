"""experiments/t5_seeds_report.py: MGE minus each other pool, paired per seed, checked by hand."""

import pytest

from tests.helpers import script_module


@pytest.fixture(scope="module")
def report():
    with script_module("experiments/t5_seeds_report.py") as module:
        yield module


def _row(report, pool: str, seed: int, value: float) -> dict:
    return {"dataset": "mnist", "eps": 0.1, "pool": pool, "seed": seed, **dict.fromkeys(report.PAIRED, value)}


def test_a_pool_present_on_some_seeds_is_paired_over_those_seeds_only(report):
    rows = [_row(report, "MGE", 0, 0.50), _row(report, "noise", 0, 0.40)]
    rows += [_row(report, "MGE", 1, 0.60), _row(report, "noise", 1, 0.70), _row(report, "E-MGE", 1, 0.55)]
    lines = {line.split("|")[3].strip(): line for line in report.paired(rows).splitlines()[2:]}
    assert set(lines) == {"MGE - E-MGE", "MGE - noise"}
    noise = [cell.strip() for cell in lines["MGE - noise"].split("|")[4:6]]
    assert noise == ["0 1", "+10.0 -10.0 (mean +0.0)"]  # 50 - 40 and 60 - 70 points
    evolved = [cell.strip() for cell in lines["MGE - E-MGE"].split("|")[4:6]]
    assert evolved == ["1", "+5.0 (mean +5.0)"]  # seed 0 has no E-MGE: left out, not a KeyError
