"""Batch augmentation for FaceSwap training, on the training device (torch + kornia).

It follows the deepfakes/faceswap training recipe (``lib/training/augmentation.py``):

* :func:`random_lab` -- colour augmentation in L*a*b* (lightness +-30 %, a/b +-8 %), applied
  to input and target alike;
* :func:`random_affine` -- rotation +-10 deg, zoom +-5 %, shift +-5 %, horizontal flip 50 %,
  one draw per sample applied identically to every tensor given (input, target, masks);
* :func:`random_warp` -- the **input-only** random warp: a 5x5 control grid over the face
  whose points move by Gaussian noise of sd ``5/256 * size`` pixels, interpolated to a dense
  displacement map and remapped with ``grid_sample``. With ``umeyama_target=True`` it also
  returns the target of the original 64 px recipe: the image remapped by the similarity
  (Umeyama 1991) that best fits the noisy grid, so the network only has to undo the
  non-rigid part of the warp.

Images are float tensors (B, C, H, W) in [0, 1]. Every random function takes an optional
``torch.Generator`` (on the images' device) for reproducible draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F

from genface.faces.align import umeyama

__all__ = ["random_warp", "random_affine", "random_lab", "AugmentConfig", "FaceSwapAugment"]


def _check_images(x: torch.Tensor, name: str = "images") -> None:
    if x.ndim != 4:
        raise ValueError(f"{name} must be (B, C, H, W), got {tuple(x.shape)}")


def _uniform(n: int, amount: float, like: torch.Tensor, generator) -> torch.Tensor:
    """n draws from U(-amount, amount) on ``like``'s device."""
    u = torch.rand(n, generator=generator, device=like.device, dtype=like.dtype)
    return (2 * u - 1) * amount


def random_warp(
    x: torch.Tensor,
    sigma: float = 5 / 256,
    grid_size: int = 5,
    coverage: float = 0.875,
    umeyama_target: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Randomly warp a batch of faces (the input side of FaceSwap training).

    Args:
        x: images (B, C, H, W), H == W usual but not required.
        sigma: noise sd of each control point as a fraction of the image size (faceswap:
            5/256); 0 = no warp (the identity).
        grid_size: control points per side (faceswap: 5).
        coverage: fraction of the image spanned by the control grid, centred (faceswap's
            "coverage"); outside it the displacement is held at the grid's border value.
        umeyama_target: also return the similarity-warped target of the original 64 px
            recipe; False = the target is ``x`` itself (untouched).
        generator: random generator on ``x``'s device; None = the global one.

    Returns:
        ``(warped, target)``: the warped input and the target (``x`` itself unless
        ``umeyama_target``).
    """
    _check_images(x)
    b, _, h, w = x.shape
    eye = torch.eye(2, 3, device=x.device, dtype=x.dtype).expand(b, 2, 3)
    base = F.affine_grid(eye, (b, 1, h, w), align_corners=False)  # (B, H, W, 2), (x, y) in [-1, 1]
    lin = torch.linspace(-coverage, coverage, grid_size, device=x.device, dtype=x.dtype)
    gy, gx = torch.meshgrid(lin, lin, indexing="ij")
    control = torch.stack([gx, gy], dim=-1)  # (G, G, 2)
    # sd of sigma * size pixels = 2 * sigma in normalised [-1, 1] units.
    noise = torch.randn((b, grid_size, grid_size, 2), generator=generator, device=x.device,
                        dtype=x.dtype) * (2 * sigma)
    # Dense displacement map: bilinear interpolation of the control-point noise.
    dense = F.grid_sample(noise.permute(0, 3, 1, 2), base / coverage, mode="bilinear",
                          padding_mode="border", align_corners=True)  # (B, 2, H, W)
    grid = base + dense.permute(0, 2, 3, 1)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if not umeyama_target:
        return warped, x
    # The similarity from the regular grid to the noisy grid: sampling the image through it
    # approximates the warp by a rigid motion (cv2.warpAffine with umeyama(noisy -> regular)).
    src = control.reshape(1, -1, 2).expand(b, -1, -1)
    theta = umeyama(src, src + noise.reshape(b, -1, 2))  # (B, 2, 3) normalised coords
    tgrid = F.affine_grid(theta, tuple(x.shape), align_corners=False)
    target = F.grid_sample(x, tgrid, mode="bilinear", padding_mode="border", align_corners=False)
    return warped, target


def random_affine(
    *tensors: torch.Tensor,
    rotation: float = 10.0,
    zoom: float = 0.05,
    shift: float = 0.05,
    flip: float = 0.5,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, ...]:
    """Apply one random similarity (+ flip) per sample, identically to every tensor given.

    Args:
        *tensors: batches (B, C_i, H, W) sharing B, H, W (e.g. input, target, region mask).
        rotation: max rotation in degrees (+-); 0 = none.
        zoom: max relative zoom (+-); 0 = none.
        shift: max shift as a fraction of the size (+-); 0 = none.
        flip: probability of a horizontal flip; 0 = never.
        generator: random generator on the tensors' device; None = the global one.

    Returns:
        the transformed tensors, in order (edges replicated, as cv2.BORDER_REPLICATE).
    """
    if not tensors:
        return ()
    x = tensors[0]
    _check_images(x)
    b, _, h, w = x.shape
    for t in tensors[1:]:
        _check_images(t)
        if t.shape[0] != b or t.shape[-2:] != (h, w):
            raise ValueError(f"random_affine needs tensors of equal B, H, W; got {tuple(x.shape)} "
                             f"and {tuple(t.shape)}")
    dt = x.dtype if x.is_floating_point() else torch.float32
    ref = torch.empty(0, device=x.device, dtype=dt)
    angle = _uniform(b, rotation, ref, generator)
    scale = 1 + _uniform(b, zoom, ref, generator)
    tx = _uniform(b, shift, ref, generator) * w
    ty = _uniform(b, shift, ref, generator) * h
    do_flip = torch.rand(b, generator=generator, device=x.device) < flip
    center = torch.tensor([(w - 1) / 2, (h - 1) / 2], device=x.device, dtype=dt).expand(b, 2)
    m = kornia.geometry.transform.get_rotation_matrix2d(center, angle, scale.unsqueeze(1).expand(b, 2))
    m = torch.cat([m, torch.tensor([[[0, 0, 1]]], device=x.device, dtype=dt).expand(b, 1, 3)], 1)
    m[:, 0, 2] += tx
    m[:, 1, 2] += ty
    fl = torch.eye(3, device=x.device, dtype=dt).repeat(b, 1, 1)
    fl[do_flip, 0, 0] = -1
    fl[do_flip, 0, 2] = w - 1
    m = (m @ fl)[:, :2]
    out = []
    for t in tensors:
        tf = t if t.is_floating_point() else t.to(dt)
        r = kornia.geometry.transform.warp_affine(tf, m.to(tf.dtype), (h, w), mode="bilinear",
                                                  padding_mode="border", align_corners=True)
        out.append(r if t.is_floating_point() else r.round().to(t.dtype))
    return tuple(out)


def random_lab(
    x: torch.Tensor,
    lightness: float = 0.30,
    ab: float = 0.08,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """faceswap's colour augmentation: a random shift of each L*a*b* channel.

    Each channel (scaled to [0, 1]) moves towards 1 by ``r * (1 - v)`` for a draw r > 0, or
    towards 0 by ``|r| * v`` for r < 0, with r ~ U(-amount, amount) per sample and channel.

    Args:
        x: RGB images (B, 3, H, W) in [0, 1].
        lightness: amount for L* (faceswap: 30 %); 0 = leave lightness.
        ab: amount for a* and b* (faceswap: 8 %); 0 = leave colour.
        generator: random generator on ``x``'s device; None = the global one.
    """
    _check_images(x)
    if x.shape[1] != 3:
        raise ValueError(f"random_lab needs RGB images, got {x.shape[1]} channels")
    b = x.shape[0]
    lab = kornia.color.rgb_to_lab(x.clamp(0, 1))
    lo = torch.tensor([0.0, -128.0, -128.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    span = torch.tensor([100.0, 255.0, 255.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    v = (lab - lo) / span
    amount = torch.tensor([lightness, ab, ab], device=x.device, dtype=x.dtype)
    r = (2 * torch.rand((b, 3), generator=generator, device=x.device, dtype=x.dtype) - 1) * amount
    r = r.view(b, 3, 1, 1)
    v = torch.where(r >= 0, v + (1 - v) * r, v * (1 + r))
    return kornia.color.lab_to_rgb(v * span + lo, clip=True)


@dataclass
class AugmentConfig:
    """Options of :class:`FaceSwapAugment`; defaults follow faceswap's training recipe."""

    warp: bool = True  # Random warp of the input; False = the input is the (augmented) target.
    warp_sigma: float = 5 / 256  # Control-point noise sd as a fraction of the size.
    warp_grid: int = 5  # Control points per side.
    warp_coverage: float = 0.875  # Fraction of the face spanned by the control grid.
    umeyama_target: bool = False  # Original 64 px recipe: target = similarity fit of the warp.
    rotation: float = 10.0  # Random affine max rotation (deg); 0 = none.
    zoom: float = 0.05  # Random affine max zoom (fraction); 0 = none.
    shift: float = 0.05  # Random affine max shift (fraction of size); 0 = none.
    flip: float = 0.5  # Horizontal flip probability; 0 = never.
    color_lightness: float = 0.30  # L*a*b* lightness amount; 0 = off.
    color_ab: float = 0.08  # L*a*b* a/b amount; 0 = off.


class FaceSwapAugment:
    """Colour + affine on input and target alike, then the random warp on the input only.

    Args:
        config: an :class:`AugmentConfig` (or mapping); None = the defaults.
        **overrides: :class:`AugmentConfig` fields overriding ``config``.
    """

    def __init__(self, config: AugmentConfig | dict | None = None, **overrides):
        from genface.utils import build_config

        self.config = build_config(AugmentConfig, config, **overrides)

    def __call__(
        self,
        x: torch.Tensor,
        *extras: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """Augment faces ``x`` (B, 3, H, W) in [0, 1].

        Args:
            x: the faces.
            *extras: per-pixel companions (e.g. region weight maps, masks) that follow the
                affine transform (and the Umeyama target transform is not applied to them).
            generator: random generator on ``x``'s device.

        Returns:
            ``(input, target, extras)``.
        """
        c = self.config
        if c.color_lightness or c.color_ab:
            x = random_lab(x, c.color_lightness, c.color_ab, generator=generator)
        if c.rotation or c.zoom or c.shift or c.flip:
            x, *extras = random_affine(x, *extras, rotation=c.rotation, zoom=c.zoom,
                                       shift=c.shift, flip=c.flip, generator=generator)
        if not c.warp:
            return x, x, tuple(extras)
        warped, target = random_warp(x, c.warp_sigma, c.warp_grid, c.warp_coverage,
                                     umeyama_target=c.umeyama_target, generator=generator)
        return warped, target, tuple(extras)
