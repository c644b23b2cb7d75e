"""genface: generative face models and face swapping for research.

Interchangeable PyTorch modules (FaceSwap autoencoder, VAE, DCGAN, ProGAN, StyleGAN,
StyleGAN2) built from one shared layers module (:mod:`genface.nn`), Lightning training
modules (:mod:`genface.training`), Hydra configs (shipped as :mod:`genface.configs`) and the
embedded synthetic face renderer :class:`genface.data.SyntheticFaces`.

Everything this library generates is synthetic; files it writes carry a provenance mark
(see :mod:`genface.provenance`). See ``docs/responsible-use.md``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
