"""The notebook API of genface's generators (``generate``, ``style_mix``, ``interpolate``, ...).

:class:`GeneratorAPI` is built on a generator's ``mapping(z, truncation_psi=, truncation_cutoff=)``
and ``synthesis(ws, noise_mode=)`` (ProGAN, StyleGAN, StyleGAN2); :class:`GANWrapperAPI`
delegates it from a generator/discriminator pair to its generator. The latent-space maths it
uses (:func:`~genface.nn.latent.slerp`, :func:`~genface.nn.latent.lerp`,
:func:`~genface.nn.latent.mix_ws`) stays in :mod:`genface.nn.latent`.
"""

from __future__ import annotations

import contextlib

import torch

from genface.nn.latent import INTERPOLATION_SPACES, lerp, mix_ws, slerp
from genface.utils import seeded_randn

__all__ = ["GeneratorAPI", "GANWrapperAPI"]


class GeneratorAPI:
    """Notebook API for generators that expose ``mapping`` and ``synthesis``.

    The host class must define ``z_dim``, ``num_ws``, ``mapping(z, truncation_psi=...,
    truncation_cutoff=..., update_w_avg=...)`` returning ``(N, num_ws, w_dim)`` and
    ``synthesis(ws, noise_mode=...)`` returning images.
    """

    z_dim: int
    num_ws: int

    def _device(self) -> torch.device:
        return next(self.parameters()).device  # type: ignore[attr-defined]

    @contextlib.contextmanager
    def _seeded(self, seed: int | None):
        if seed is None:
            yield None
            return
        device = self._device()
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield torch.Generator().manual_seed(seed)

    def sample_z(self, n: int, seed: int | None = None) -> torch.Tensor:
        """``(n, z_dim)`` standard normal latents on the model's device (``seed`` = reproducible)."""
        return seeded_randn(n, self.z_dim, seed=seed, device=self._device())

    @torch.no_grad()
    def generate(self, n: int, truncation_psi: float = 1.0, seed: int | None = None,
                 noise_mode: str = "random", truncation_cutoff: int | None = None) -> torch.Tensor:
        """Sample ``n`` images ``(n, C, H, W)`` clamped to [-1, 1].

        Args:
            n: number of images.
            truncation_psi: truncation trick ``psi`` (1.0 = none).
            seed: makes ``z`` and the random noise reproducible; ``None`` = global RNG.
            noise_mode: ``"random"``, ``"const"`` or ``"none"`` (see :class:`~genface.nn.style.NoiseInjection`).
            truncation_cutoff: truncate only the first ws rows; ``None`` = all.
        """
        with self._seeded(seed) as g:
            z = torch.randn(n, self.z_dim, generator=g).to(self._device())
            ws = self.mapping(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                              update_w_avg=False)
            return self.synthesis(ws, noise_mode=noise_mode).clamp(-1, 1)

    @torch.no_grad()
    def style_mix(self, z1: torch.Tensor, z2: torch.Tensor, crossover: int,
                  truncation_psi: float = 1.0, noise_mode: str = "const",
                  return_ws: bool = False):
        """Images whose ws rows ``< crossover`` come from ``z1`` (coarse styles) and the rest from ``z2``.

        Args:
            z1, z2: ``(N, z_dim)`` latents (or ``(z_dim,)``).
            crossover: first ws row taken from ``z2`` (0 = all from ``z2``, ``num_ws`` = all from ``z1``).
            truncation_psi: truncation applied to both.
            noise_mode: noise for the synthesis (``"const"`` so that only styles differ).
            return_ws: also return the mixed ws ``(N, num_ws, w_dim)``.
        """
        if self.num_ws < 2:
            raise NotImplementedError(f"{type(self).__name__} has a single latent input: no style mixing")
        z1, z2 = (z if z.ndim == 2 else z[None] for z in (z1, z2))
        ws1 = self.mapping(z1, truncation_psi=truncation_psi, update_w_avg=False)
        ws2 = self.mapping(z2, truncation_psi=truncation_psi, update_w_avg=False)
        ws = mix_ws(ws1, ws2, crossover)
        img = self.synthesis(ws, noise_mode=noise_mode).clamp(-1, 1)
        return (img, ws) if return_ws else img

    @torch.no_grad()
    def interpolate(self, z1: torch.Tensor, z2: torch.Tensor, steps: int, space: str = "z",
                    truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        """``steps`` images from ``z1`` to ``z2``: slerp in Z or lerp in W (StyleGAN §4.2).

        Args:
            z1, z2: ``(z_dim,)`` or ``(1, z_dim)`` end points, or ``(N, z_dim)`` batches of N
                pairs (row i of ``z1`` walks to row i of ``z2``).
            steps: number of frames (>= 2), end points included.
            space: ``"z"`` (slerp between latents) or ``"w"`` (lerp between mapped ws).
            truncation_psi: truncation applied to the mapped ws.
            noise_mode: noise for the synthesis (``"const"`` keeps the frames coherent).

        Returns:
            ``(steps, C, H, W)`` for one pair, ``(N, steps, C, H, W)`` for N > 1 pairs.
        """
        if space not in INTERPOLATION_SPACES:
            raise ValueError(f"unknown space {space!r}; valid: {list(INTERPOLATION_SPACES)}")
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        z1, z2 = (z.reshape(-1, z.shape[-1]).to(self._device()) for z in (z1, z2))
        if z1.shape != z2.shape or z1.shape[-1] != self.z_dim:
            raise ValueError(f"interpolate needs two (N, {self.z_dim}) latents, got "
                             f"{tuple(z1.shape)} and {tuple(z2.shape)}")
        n = z1.shape[0]
        t = torch.linspace(0, 1, steps, device=z1.device)[:, None, None]  # (steps, 1, 1)
        if space == "z":
            z = slerp(z1[None], z2[None], t).reshape(steps * n, -1)
            ws = self.mapping(z, truncation_psi=truncation_psi, update_w_avg=False)
        else:
            w1 = self.mapping(z1, truncation_psi=truncation_psi, update_w_avg=False)
            w2 = self.mapping(z2, truncation_psi=truncation_psi, update_w_avg=False)
            ws = lerp(w1[None], w2[None], t[..., None]).reshape(steps * n, *w1.shape[1:])
        img = self.synthesis(ws, noise_mode=noise_mode).clamp(-1, 1)
        img = img.reshape(steps, n, *img.shape[1:]).transpose(0, 1)  # (n, steps, C, H, W)
        return img[0] if n == 1 else img

    def mixing_regularization(self, z: torch.Tensor, ws: torch.Tensor, mixing_prob: float,
                              num_active_ws: int | None = None, **mapping_kwargs) -> torch.Tensor:
        """StyleGAN's mixing regularisation (§3.1): with probability ``mixing_prob`` per batch,
        replace ws rows from a random crossover in ``[1, num_active_ws)`` by a second latent's.

        Args:
            z: the batch's latents (only its shape and device are used).
            ws: ``(N, num_ws, w_dim)`` mapped from ``z``.
            mixing_prob: probability of mixing this batch (0.9 in StyleGAN; 0 = never).
            num_active_ws: rows the current (progressive) resolution uses; ``None`` = all.
            mapping_kwargs: passed to ``mapping`` for the second latent.
        """
        active = ws.shape[1] if num_active_ws is None else num_active_ws
        if mixing_prob <= 0 or active < 2 or torch.rand(()) >= mixing_prob:
            return ws
        crossover = int(torch.randint(1, active, ()))
        ws2 = self.mapping(torch.randn_like(z), **mapping_kwargs)
        return mix_ws(ws, ws2, crossover)


class GANWrapperAPI:
    """Delegates the notebook API of a ``generator``/``discriminator`` pair to ``self.generator``.

    The wrappers (``ProGAN``, ``StyleGAN``, ``StyleGAN2``) hold ``generator`` and
    ``discriminator`` and expose ``z_dim``; calling the wrapper runs the generator.
    """

    generator: torch.nn.Module

    @property
    def z_dim(self) -> int:
        return self.generator.z_dim

    def forward(self, z: torch.Tensor, **kwargs) -> torch.Tensor:
        """Run the generator: ``self.generator(z, **kwargs)``."""
        return self.generator(z, **kwargs)

    def generate(self, *args, **kwargs) -> torch.Tensor:
        """See :meth:`GeneratorAPI.generate`."""
        return self.generator.generate(*args, **kwargs)

    def mapping(self, *args, **kwargs) -> torch.Tensor:
        """The generator's ``mapping(z, truncation_psi=, truncation_cutoff=)`` -> ws."""
        return self.generator.mapping(*args, **kwargs)

    def synthesis(self, *args, **kwargs) -> torch.Tensor:
        """The generator's ``synthesis(ws, noise_mode=)`` -> images."""
        return self.generator.synthesis(*args, **kwargs)

    def style_mix(self, *args, **kwargs):
        """See :meth:`GeneratorAPI.style_mix`."""
        return self.generator.style_mix(*args, **kwargs)

    def interpolate(self, *args, **kwargs) -> torch.Tensor:
        """See :meth:`GeneratorAPI.interpolate`."""
        return self.generator.interpolate(*args, **kwargs)
