"""Image disturbances and non-face sets for testing feature-space metrics.

Heusel et al. 2017 (arXiv 1706.08500, Fig. 1 and appendix A1) validated FID by disturbing
real images at increasing levels (Gaussian noise, Gaussian blur, black rectangles, swirl,
salt-and-pepper noise, contamination by foreign images) and checking that the distance
rises with the level. This module holds those disturbances, and the "no face at all"
image families the validity suite and the feature net's negative examples draw from, so
that both use one implementation.

All functions take and return float images ``(N, 3, H, W)`` in ``[-1, 1]`` and are
deterministic given a :class:`torch.Generator`. Spatial sizes (blur sigma, swirl radius,
patch grid) are given relative to a 32 px image and scaled with the resolution, so a level
means the same visual change at 32 and at 64 px.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

Images = torch.Tensor


def _scale(x: Images) -> float:
    """Pixels per pixel of a 32 px image."""
    return x.shape[-1] / 32.0


def gaussian_noise(x: Images, sd: float, g: torch.Generator) -> Images:
    """Add i.i.d. Gaussian noise of standard deviation ``sd`` in ``[0, 1]`` intensity units.

    Args:
        x: images in ``[-1, 1]``.
        sd: noise standard deviation as a share of the intensity range (0 = off).
        g: random generator.
    """
    return (x + 2 * sd * torch.randn(x.shape, generator=g)).clamp(-1, 1)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def gaussian_blur(x: Images, sigma: float, g: torch.Generator | None = None) -> Images:
    """Separable Gaussian blur (reflect padding) of ``sigma`` pixels *at 32 px*.

    Args:
        x: images in ``[-1, 1]``.
        sigma: standard deviation in pixels of a 32 px image (scaled with the resolution);
            0 = off.
        g: unused (same signature as the other disturbances).
    """
    s = sigma * _scale(x)
    if s <= 0:
        return x.clone()
    k = _gauss_kernel(s)
    r = (len(k) - 1) // 2
    if r >= x.shape[-1]:  # reflect padding needs r < side: truncate the kernel
        k = k[r - x.shape[-1] + 1: r + x.shape[-1]]
        k, r = k / k.sum(), x.shape[-1] - 1
    c = x.shape[1]
    y = F.pad(x, (r, r, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (0, 0, r, r), mode="reflect")
    return F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def black_rectangles(x: Images, size: float, g: torch.Generator, count: int = 5) -> Images:
    """Paint ``count`` black squares of side ``size * H`` at random places (Heusel: five).

    Args:
        x: images in ``[-1, 1]``.
        size: side of each square as a share of the image side (0 = off).
        g: random generator.
        count: squares per image.
    """
    y = x.clone()
    n, _, h, w = x.shape
    side = int(round(size * h))
    if side <= 0:
        return y
    tops = torch.randint(0, h - side + 1, (n, count), generator=g)
    lefts = torch.randint(0, w - side + 1, (n, count), generator=g)
    for i in range(n):
        for t, left in zip(tops[i].tolist(), lefts[i].tolist()):
            y[i, :, t:t + side, left:left + side] = -1.0
    return y


def swirl(x: Images, strength: float, g: torch.Generator | None = None, radius: float = 32.0) -> Images:
    """Swirl about the image centre, as scikit-image's ``transform.swirl`` (bilinear, reflect).

    The source of output pixel at polar ``(rho, phi)`` is at angle
    ``phi + strength * exp(-rho / (radius * ln 2 / 5))``.

    Args:
        x: images in ``[-1, 1]``.
        strength: swirl amount in radians at the centre (0 = off).
        g: unused.
        radius: extent of the swirl in pixels of a 32 px image (scaled with the resolution).
    """
    n, _, h, w = x.shape
    r = radius * _scale(x) * math.log(2) / 5
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    cy, cx = (h - 1) / 2, (w - 1) / 2
    dy, dx = yy - cy, xx - cx
    rho = torch.sqrt(dx * dx + dy * dy)
    theta = torch.atan2(dy, dx) + strength * torch.exp(-rho / r)
    sx, sy = cx + rho * torch.cos(theta), cy + rho * torch.sin(theta)
    grid = torch.stack([2 * sx / (w - 1) - 1, 2 * sy / (h - 1) - 1], -1)
    return F.grid_sample(x, grid.expand(n, h, w, 2), mode="bilinear", padding_mode="reflection",
                         align_corners=True)


def salt_and_pepper(x: Images, fraction: float, g: torch.Generator) -> Images:
    """Set a ``fraction`` of the pixels to white or black (half each, all channels).

    Args:
        x: images in ``[-1, 1]``.
        fraction: share of pixels replaced (0 = off).
        g: random generator.
    """
    n, _, h, w = x.shape
    u = torch.rand((n, 1, h, w), generator=g)
    y = torch.where(u < fraction / 2, -1.0, x)
    return torch.where((u >= fraction / 2) & (u < fraction), 1.0, y)


# ---- image families that show no face ------------------------------------------------

def colour_blobs(n: int, res: int, g: torch.Generator, palette: Images | None = None,
                 blobs: int = 6) -> Images:
    """Smooth colour fields: a background plus ``blobs`` soft Gaussian ellipses of random colour.

    Args:
        n: number of images.
        res: side in pixels.
        g: random generator.
        palette: images whose pixels the colours are drawn from (so that the colour
            statistics match a face set); ``None`` = uniform colours.
        blobs: ellipses per image.
    """
    def colours(k: int) -> torch.Tensor:  # (n, k, 3)
        if palette is None:
            return torch.rand((n, k, 3), generator=g) * 2 - 1
        flat = palette.permute(0, 2, 3, 1).reshape(-1, 3)
        return flat[torch.randint(0, len(flat), (n * k,), generator=g)].view(n, k, 3)

    t = (torch.arange(res, dtype=torch.float32) + 0.5) / res
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    img = colours(1)[:, 0, :, None, None].expand(n, 3, res, res).clone()
    col = colours(blobs)
    centre = torch.rand((n, blobs, 2), generator=g)
    size = 0.08 + 0.25 * torch.rand((n, blobs, 2), generator=g)
    for b in range(blobs):
        d = ((xx - centre[:, b, 0, None, None]) / size[:, b, 0, None, None]) ** 2 + \
            ((yy - centre[:, b, 1, None, None]) / size[:, b, 1, None, None]) ** 2
        a = torch.exp(-0.5 * d)[:, None]
        img = (1 - a) * img + a * col[:, b, :, None, None]
    return img.clamp(-1, 1)


def shuffled_patches(x: Images, g: torch.Generator, grid: int = 4) -> Images:
    """Cut each image into ``grid x grid`` patches and put them back in a random order.

    Local statistics (colours, edges, parts of eyes) stay those of the source images; the
    arrangement that makes a face is gone.

    Args:
        x: source images ``(N, 3, H, W)``, ``H`` divisible by ``grid``.
        g: random generator.
        grid: patches per side.
    """
    n, c, h, w = x.shape
    ph, pw = h // grid, w // grid
    p = x.reshape(n, c, grid, ph, grid, pw).permute(0, 2, 4, 1, 3, 5).reshape(n, grid * grid, c, ph, pw)
    order = torch.argsort(torch.rand((n, grid * grid), generator=g), dim=1)
    p = p[torch.arange(n)[:, None], order]
    return p.reshape(n, grid, grid, c, ph, pw).permute(0, 3, 1, 4, 2, 5).reshape(n, c, h, w)


def uniform_noise(n: int, res: int, g: torch.Generator) -> Images:
    """I.i.d. uniform pixels in ``[-1, 1]``."""
    return torch.rand((n, 3, res, res), generator=g) * 2 - 1


def colour_grid(n: int, res: int, g: torch.Generator, palette: Images, cells: int = 4) -> Images:
    """Smooth colour fields: a ``cells x cells`` grid of palette colours, bicubically enlarged.

    A family of the feature net's *training* negatives (the validity suite tests with
    :func:`colour_blobs` instead).

    Args:
        n: number of images.
        res: side in pixels.
        g: random generator.
        palette: images the colours are drawn from.
        cells: grid cells per side.
    """
    flat = palette.permute(0, 2, 3, 1).reshape(-1, 3)
    col = flat[torch.randint(0, len(flat), (n * cells * cells,), generator=g)]
    small = col.view(n, cells, cells, 3).permute(0, 3, 1, 2)
    return F.interpolate(small, size=(res, res), mode="bicubic", align_corners=False).clamp(-1, 1)


def coloured_noise(n: int, res: int, g: torch.Generator, palette: Images, sd: float = 0.5,
                   sigma: float = 1.0) -> Images:
    """Gaussian noise around palette colours, low-passed by a blur of ``sigma`` px at 32 px.

    A family of the feature net's *training* negatives (the suite tests with white
    :func:`uniform_noise`).

    Args:
        n: number of images.
        res: side in pixels.
        g: random generator.
        palette: images the mean colours are drawn from.
        sd: noise standard deviation in ``[0, 1]`` units before the blur.
        sigma: blur in pixels of a 32 px image (0 = white).
    """
    flat = palette.permute(0, 2, 3, 1).reshape(-1, 3)
    mean = flat[torch.randint(0, len(flat), (n,), generator=g)][:, :, None, None]
    x = mean + 2 * sd * torch.randn((n, 3, res, res), generator=g)
    return gaussian_blur(x, sigma).clamp(-1, 1)


def non_faces(kind: str, n: int, res: int, g: torch.Generator, faces: Images) -> Images:
    """``n`` images of one no-face family: ``"blobs"``, ``"patches"`` (of ``faces``) or ``"noise"``.

    Args:
        kind: the family.
        n: number of images.
        res: side in pixels.
        g: random generator.
        faces: real images the blob colours and the shuffled patches come from (at least ``n``).
    """
    if kind == "blobs":
        return colour_blobs(n, res, g, palette=faces[: min(len(faces), 256)])
    if kind == "patches":
        return shuffled_patches(faces[:n], g)
    if kind == "noise":
        return uniform_noise(n, res, g)
    raise ValueError(f"unknown non-face kind {kind!r}; valid: {list(NON_FACE_KINDS)}")


NON_FACE_KINDS = ("blobs", "patches", "noise")


def contaminate(x: Images, fraction: float, g: torch.Generator, kind: str,
                pool: Images | None = None) -> Images:
    """Replace a random ``fraction`` of the images by non-face images of ``kind``.

    Args:
        x: images in ``[-1, 1]``.
        fraction: share of the set replaced (0 = off, 1 = no face left).
        g: random generator.
        kind: see :func:`non_faces`.
        pool: non-face images ``(N, ...)`` to take the replacement at position ``i`` from
            (so contaminated sets reuse one pure non-face set); ``None`` = draw new ones.
    """
    n = x.shape[0]
    k = int(round(fraction * n))
    y = x.clone()
    if k:
        idx = torch.randperm(n, generator=g)[:k]
        y[idx] = pool[idx] if pool is not None else non_faces(kind, k, x.shape[-1], g, x[idx])
    return y


#: name -> (function(x, level, g), levels). Levels follow Heusel et al.'s appendix where
#: they apply; blur sigma and swirl radius are in pixels of a 32 px image.
DISTURBANCES: dict[str, tuple[Callable[[Images, float, torch.Generator], Images], tuple[float, ...]]] = {
    "gaussian_noise": (gaussian_noise, (0.05, 0.1, 0.2, 0.4)),
    "gaussian_blur": (gaussian_blur, (0.5, 1.0, 2.0, 3.0)),
    "black_rectangles": (black_rectangles, (0.1, 0.15, 0.2, 0.25)),
    "swirl": (swirl, (1.0, 2.0, 3.0, 4.0)),
    "salt_and_pepper": (salt_and_pepper, (0.05, 0.1, 0.2, 0.3)),
    **{f"contaminate_{k}": ((lambda x, f, g, k=k: contaminate(x, f, g, k)), (0.1, 0.25, 0.5, 0.75))
       for k in NON_FACE_KINDS},
}
