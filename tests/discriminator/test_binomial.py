"""The performance test's binomial bound: Wilson's one-sided lower bound, computed by hand."""

import pytest

from mge.discriminator import wilson_lower_bound


def test_wilson_bound_matches_a_hand_computation():
    # 1980 of 2000 correct (p = 0.99) at 95%: z = Phi^-1(0.95) = 1.6448536, z^2 = 2.7055435
    #   center = p + z^2 / 2n                    = 0.99 + 0.00067639              = 0.99067639
    #   half   = z sqrt(p(1-p)/n + z^2 / 4n^2)   = 1.6448536 * sqrt(4.95e-6 + 1.691e-7)
    #                                            = 1.6448536 * 0.00226254         = 0.00372157
    #   lower  = (center - half) / (1 + z^2 / n) = 0.98695482 / 1.00135277        = 0.98562151
    assert wilson_lower_bound(1980, 2000, 0.95) == pytest.approx(0.98562151, abs=1e-8)


def test_wilson_bound_of_a_perfect_count_stays_below_one():
    # p = 1: the square root is z / 2n, so lower = n / (n + z^2) = 100 / 102.7055435 = 0.97365728
    # (the normal approximation would give 1: a perfect seed would demand perfect candidates)
    assert wilson_lower_bound(100, 100, 0.95) == pytest.approx(0.97365728, abs=1e-8)


def test_wilson_bound_loosens_with_confidence_and_tightens_with_examples():
    assert wilson_lower_bound(990, 1000, 0.99) < wilson_lower_bound(990, 1000, 0.95) < 0.99
    assert wilson_lower_bound(99, 100, 0.95) < wilson_lower_bound(9900, 10000, 0.95) < 0.99


@pytest.mark.parametrize(
    ("correct", "n", "confidence", "match"),
    [(5, 0, 0.95, "n >= 1"), (11, 10, 0.95, "correct <= n"), (5, 10, 1.0, "confidence"),
     (5, 10, float("nan"), "confidence")],
)  # fmt: skip
def test_bad_binomial_arguments_are_refused(correct, n, confidence, match):
    with pytest.raises(ValueError, match=match):
        wilson_lower_bound(correct, n, confidence)
