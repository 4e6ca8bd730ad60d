"""The mge model zoo.

Importing this package imports every architecture module, so that each registers
itself and ``build_model`` knows all names (timm's "Unknown model" came from a
module that was never imported).

>>> from mge.models import build_model, list_models
>>> list_models()
['conv4', 'digits_cnn', 'lenet5', 'mlp', 'resnet12', 'resnet18']
"""

from mge.models import cnn, conv4, lenet, mlp, resnet  # noqa: F401  (imported to register the models)
from mge.models.registry import build_model, list_models, register_model

__all__ = ["build_model", "list_models", "register_model"]
