"""What the heads see: a frozen backbone's features, raw or normalised (SimpleShot's UN, L2N and CL2N).

Wang et al. (2019, "SimpleShot") found that nearest-centroid few-shot classification on frozen
features depends on the features' scale: L2-normalising them (``"l2"``: Euclidean prototypes
become cosine ones) or first subtracting the mean feature of the *train* classes
(``"centred_l2"``) changed 1-shot accuracy by several points. The centre here is each model's own
mean feature on images of the classes it was trained on (the discriminator split), never on the
held-out classes the episodes come from. The linear probe L2-normalises its input itself, so
``"l2"`` changes only the prototype head.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

FEATURES = ("raw", "l2", "centred_l2")


def transform_features(features: Tensor, how: str, centre: Tensor | None = None) -> Tensor:
    """Features ``(..., M, D)`` as the heads should see them.

    Args:
        features: ``(..., M, D)`` features of ``M`` images (leading dimensions, e.g. members).
        how: ``"raw"``: unchanged; ``"l2"``: each feature divided by its L2 norm; ``"centred_l2"``:
            ``centre`` subtracted, then L2-normalised.
        centre: ``(..., D)`` mean train-class feature per leading index, for ``"centred_l2"`` only.

    Raises:
        ValueError: ``how`` is unknown, or ``centre`` is missing for ``"centred_l2"`` (or given otherwise).
    """
    if how not in FEATURES:
        raise ValueError(f"Unknown features {how!r}. Valid values are {list(FEATURES)}.")
    if (centre is not None) != (how == "centred_l2"):
        raise ValueError(f"A centre is needed for features='centred_l2' and only then; got features={how!r}.")
    if how == "raw":
        return features
    if centre is not None:
        features = features - centre.unsqueeze(-2)
    return F.normalize(features, dim=-1)
