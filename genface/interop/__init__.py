"""Published weights in: importers that turn other projects' checkpoints into genface models.

* :mod:`genface.interop.keras_faceswap`: deepfakes/faceswap's Keras ``original`` model
  (``encoder.h5``, ``decoder_A.h5``, ``decoder_B.h5``; the thesis's path) -> :class:`~genface.models.faceswap.FaceSwap`.
* :mod:`genface.interop.rosinality`: rosinality/stylegan2-pytorch ``.pt`` (``g_ema``/``g``, ``d``) ->
  :class:`~genface.models.stylegan2.StyleGAN2Generator` / ``StyleGAN2Discriminator``.
* :mod:`genface.interop.nvlabs`: NVlabs stylegan2-ada-pytorch ``.pkl`` (``G_ema``/``G``, ``D``) ->
  :class:`~genface.models.stylegan2.StyleGAN2Generator` / ``StyleGAN2Discriminator``, through
  the restricted unpickler; the mapping network alone of stylegan2-ada and stylegan3 pickles
  (``mapping_from_nvlabs``).
* :mod:`genface.interop.safe_pickle`: a restricted unpickler for NVlabs ``.pkl`` files that
  rebuilds tensors and plain containers only and never runs the code stored in the pickle.

Each importer returns an ordinary genface model; ``save_pretrained`` then writes it as
``config.json`` + safetensors (never a pickle).
"""
