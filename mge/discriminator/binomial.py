"""The performance test's bound from the seed's own sampling error on the discriminator split.

The seed's accuracy on the discriminator split is a count of correct answers out of n, so it
estimates its true accuracy with a binomial sampling error: about 0.2 points at 99% on 2,000
examples, 0.6 points at 91%. A fixed tolerance (``accuracy_tolerance``) is therefore 2.2 standard
errors on MNIST and 0.8 on Fashion-MNIST. The binomial bound accepts a candidate whose split
accuracy reaches the lowest true accuracy the seed could have at a chosen one-sided confidence.

The bound is Wilson's score interval (Wilson 1927), one-sided:

    lower = (p + z^2 / 2n - z sqrt(p (1 - p) / n + z^2 / 4n^2)) / (1 + z^2 / n),   z = Phi^-1(confidence)

Why Wilson: it has a closed form (the standard library's normal quantile is all it needs), its
coverage stays close to the nominal level near p = 1, where this project's seeds sit, and it does
not collapse there: the normal approximation (Wald) gives lower = p at p = 1, i.e. it would
demand a perfect candidate from a perfect seed. Clopper-Pearson guarantees at least the nominal
coverage but is conservative (a lower, looser bound) and needs the beta quantile; on 2,000
examples at 99% the three differ by less than 0.1 points (docs/discriminator.md).
"""

from __future__ import annotations

import math
from statistics import NormalDist


def wilson_lower_bound(correct: int, n: int, confidence: float) -> float:
    """One-sided lower Wilson score bound on a binomial proportion observed as ``correct`` of ``n``.

    Args:
        correct: successes (correct answers), 0 <= correct <= n.
        n: trials (examples), >= 1.
        confidence: one-sided confidence level in (0, 1), e.g. 0.95 (z = 1.645).
    """
    if n < 1 or not 0 <= correct <= n:
        raise ValueError(f"A binomial count needs n >= 1 and 0 <= correct <= n, got correct={correct}, n={n}.")
    if not (math.isfinite(confidence) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}.")
    z = NormalDist().inv_cdf(confidence)
    p = correct / n
    center = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (center - half) / (1 + z * z / n)
