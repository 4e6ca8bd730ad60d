"""mge: training-free model generation and enhancement (MGE, arXiv 2402.17486).

Packages, in the order a run uses them: ``data`` (datasets and splits), ``models`` (architectures
and seed training), ``latent`` (the DCT codec), ``generator`` and ``discriminator`` (MGE itself),
``pool`` (models on disk), ``evaluation`` (metrics), ``reporting`` (tables), ``cli`` (Hydra entry
points).
"""

__version__ = "0.1.0"
