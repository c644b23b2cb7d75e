"""Shared layers: every architecture in :mod:`genface.models` is composed from these.

* :mod:`genface.nn.blocks` – plain convolutional blocks (DCGAN, VAE) and DCGAN's init.
* :mod:`genface.nn.equalized`, :mod:`genface.nn.resample`, :mod:`genface.nn.style`,
  :mod:`genface.nn.minibatch` – the ProGAN / StyleGAN family's primitives.
"""

from genface.nn.blocks import ConvBlock, UpConvBlock, dcgan_init_

__all__ = ["ConvBlock", "UpConvBlock", "dcgan_init_"]
