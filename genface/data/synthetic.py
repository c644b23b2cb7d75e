"""Procedural synthetic faces: the embedded default dataset (no download).

:class:`SyntheticFaces` renders cartoon-like but clearly face-shaped RGB portraits from
explicit factors, deterministically from a seed:

* **identity factors** (:class:`IdentityParams`, a function of ``(seed, identity)``):
  face width/length and jaw, skin tone, hair colour, hair style (bald, short, fringe, bob,
  long, afro), hair volume and hairline, eye colour/spacing/size/height, brow thickness,
  arch and tilt, nose length/width/depth, mouth width, lip thickness, ear size;
* **per-image factors** (:class:`ExpressionPose`, a function of ``(seed, image index)``):
  expression (smile, mouth open, brow raise, eye openness, gaze), pose (yaw, roll, x/y
  offset, scale), lighting (direction, intensity, ambient), background and shirt colour.

Because every image is an explicit function of its factors, the exact ground truth of a
face swap exists: ``ds.render(j, ds.expression_pose(i))`` is identity ``j`` with the
expression, pose, lighting and background of image ``i``.

Rendering is a 2.5-D vector renderer vectorised in torch: every primitive (ellipses,
almond eyes, lip curves, strokes) is a signed distance evaluated on a pixel grid for a
batch of images, turned into an analytically anti-aliased coverage of one pixel width and
alpha-composited; a Lambertian head ellipsoid shades the head with the image's light.
Yaw moves features over an ellipsoidal head (shift and foreshortening). Small layers
(eyes, brows, nose, mouth, ears, cheeks, body) are evaluated only on per-image pixel
windows around them, and batches group identical hair styles, which keeps a 10k x 64 px
set to seconds of CPU time (see docs/data-synthetic.md).

Exactness: all per-image scalars are derived in Python float64 (``math``) and the pixel
shader uses only correctly-rounded element-wise operations (``+ - * / sqrt min max
floor``, no fused or transcendental kernels), and each layer is clipped to the image's own
window, so a face renders to the same bytes alone or inside any batch: ``render``
reproduces the cached images exactly.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = [
    "HAIR_STYLES",
    "ExpressionPose",
    "IdentityParams",
    "SyntheticFaces",
    "default_cache_dir",
    "encode_factors",
    "factor_names",
    "render_faces",
    "sample_expression_pose",
    "sample_identity",
]

#: Bumped whenever the renderer or the samplers change, so stale caches are not reused.
RENDERER_VERSION = 1

#: Hair styles, indexed by :attr:`IdentityParams.hair_style`.
HAIR_STYLES: tuple[str, ...] = ("bald", "short", "fringe", "bob", "long", "afro")

# Colour palettes (linear interpolation along the factor value in [0, 1]).
_SKIN = ((0.98, 0.86, 0.76), (0.93, 0.76, 0.62), (0.80, 0.60, 0.44), (0.62, 0.42, 0.29),
         (0.40, 0.26, 0.18))
_HAIR = ((0.07, 0.05, 0.04), (0.24, 0.14, 0.08), (0.45, 0.28, 0.15), (0.58, 0.27, 0.12),
         (0.86, 0.70, 0.42), (0.72, 0.71, 0.69))
_IRIS = ((0.22, 0.12, 0.06), (0.42, 0.25, 0.10), (0.48, 0.42, 0.18), (0.28, 0.48, 0.28),
         (0.28, 0.48, 0.75), (0.52, 0.58, 0.64))


def _rng_field(lo: float, hi: float, warp=None):
    """A dataclass field sampled as ``lo + (hi - lo) * warp(u)``, ``u ~ U[0, 1)``.

    ``(lo, hi)`` is also the range used to normalise the factor to ``[-1, 1]``.
    ``warp=None`` samples uniformly.
    """
    return field(metadata={"range": (lo, hi), "warp": warp})


@dataclass(frozen=True)
class IdentityParams:
    """Identity factors of one synthetic person (constant over all of its images).

    Lengths are in head units: the face ellipse is about 0.55 wide (half-width) and 0.72
    tall (half-height), centred on the origin, x to the right, y downwards. Palette
    factors pick a colour along a palette (0 = first entry, 1 = last).
    """

    face_width: float = _rng_field(0.48, 0.60)  # half-width a of the face ellipse
    face_length: float = _rng_field(0.66, 0.78)  # half-height b of the face ellipse
    jaw_taper: float = _rng_field(0.0, 0.35)  # narrowing of the jaw: 0 = round, 0.35 = pointed chin
    skin_tone: float = _rng_field(0.0, 1.0)  # skin palette position: 0 = lightest, 1 = darkest
    hair_colour: float = _rng_field(0.0, 1.0)  # black, dark brown, brown, auburn, blonde, grey
    hair_style: int = field(metadata={"categories": HAIR_STYLES})  # index into HAIR_STYLES
    hair_volume: float = _rng_field(0.03, 0.12)  # thickness of the hair around the skull
    hairline: float = _rng_field(-0.08, 0.08)  # shift of the hairline; > 0 lower (more forehead hair)
    eye_colour: float = _rng_field(0.0, 1.0)  # dark brown, brown, hazel, green, blue, grey
    eye_spacing: float = _rng_field(0.19, 0.25)  # half the distance between the eye centres
    eye_size: float = _rng_field(0.075, 0.10)  # half-width of an eye
    eye_height: float = _rng_field(-0.14, -0.04)  # y of the eye centres
    brow_thickness: float = _rng_field(0.018, 0.045)  # thickness of the eyebrows (inner end)
    brow_arch: float = _rng_field(0.0, 0.04)  # height of the eyebrow arch
    brow_tilt: float = _rng_field(-0.03, 0.03)  # > 0 raises the outer ends of the brows
    nose_length: float = _rng_field(0.17, 0.27)  # from the eye line to the nose tip
    nose_width: float = _rng_field(0.06, 0.10)  # half-width of the nostril span
    nose_depth: float = _rng_field(0.08, 0.20)  # how far the nose tip protrudes (shift under yaw)
    mouth_width: float = _rng_field(0.13, 0.21)  # half-width of the mouth
    lip_thickness: float = _rng_field(0.022, 0.045)  # thickness of the lower lip
    ear_size: float = _rng_field(0.07, 0.11)  # half-height of an ear


def _closed_often(u: float) -> float:
    return max(0.0, 2.0 * u - 1.0)  # half of the images keep the mouth closed


def _open_often(u: float) -> float:
    return u ** (1.0 / 3.0)  # most eyes open, some half-closed or blinking


@dataclass(frozen=True)
class ExpressionPose:
    """Per-image factors: expression, pose, lighting and background of one image.

    Pose offsets are in canvas units (the image spans ``[-1, 1]`` in x and y, y down).
    """

    # expression
    smile: float = _rng_field(-0.4, 1.0)  # < 0 frown, 0 neutral, 1 broad smile (corners up)
    mouth_open: float = _rng_field(0.0, 1.0, _closed_often)  # 0 closed lips, 1 wide open (teeth)
    brow_raise: float = _rng_field(-1.0, 1.0)  # -1 lowered (frown), 1 raised (surprise)
    eye_open: float = _rng_field(0.05, 1.1, _open_often)  # 0 closed, 1 normal, > 1 wide
    gaze_x: float = _rng_field(-1.0, 1.0)  # iris shift, -1 left, 1 right
    gaze_y: float = _rng_field(-1.0, 1.0)  # iris shift, -1 up, 1 down
    # pose
    yaw: float = _rng_field(-0.5, 0.5)  # head turn in radians; > 0 turns the face to image right
    roll: float = _rng_field(-0.25, 0.25)  # in-plane tilt in radians; > 0 clockwise on screen
    offset_x: float = _rng_field(-0.1, 0.1)  # horizontal shift of the head, canvas units
    offset_y: float = _rng_field(-0.1, 0.1)  # vertical shift of the head, canvas units (> 0 down)
    scale: float = _rng_field(0.85, 1.1)  # size of head and body, 1 = default framing
    # lighting
    light_x: float = _rng_field(-1.0, 1.0)  # light direction x (to the right), z = 1 toward viewer
    light_y: float = _rng_field(-1.0, 0.4)  # light direction y (> 0 from below)
    light_intensity: float = _rng_field(0.45, 0.85)  # Lambertian (directional) strength
    ambient: float = _rng_field(0.3, 0.55)  # ambient light level
    # background
    background_r: float = _rng_field(0.1, 0.9)  # background colour, red
    background_g: float = _rng_field(0.1, 0.9)  # background colour, green
    background_b: float = _rng_field(0.1, 0.9)  # background colour, blue
    shirt_r: float = _rng_field(0.1, 0.9)  # shirt colour, red
    shirt_g: float = _rng_field(0.1, 0.9)  # shirt colour, green
    shirt_b: float = _rng_field(0.1, 0.9)  # shirt colour, blue

    @classmethod
    def neutral(cls, **overrides: float) -> ExpressionPose:
        """Neutral expression, frontal pose, soft top-left light, grey background.

        Args:
            **overrides: field values to change, for example ``yaw=0.3``.
        """
        values = dict(
            smile=0.0, mouth_open=0.0, brow_raise=0.0, eye_open=1.0, gaze_x=0.0, gaze_y=0.0,
            yaw=0.0, roll=0.0, offset_x=0.0, offset_y=0.0, scale=1.0, light_x=-0.3,
            light_y=-0.5, light_intensity=0.7, ambient=0.45, background_r=0.6,
            background_g=0.6, background_b=0.62, shirt_r=0.25, shirt_g=0.35, shirt_b=0.55,
        )
        values.update(overrides)
        return cls(**values)


# ---------------------------------------------------------------------------------------
# Sampling and factor encoding
# ---------------------------------------------------------------------------------------

_IDENTITY_STREAM, _IMAGE_STREAM = 0, 1


def _sample(cls: type, seed: int, stream: int, index: int):
    fields = dataclasses.fields(cls)
    u = np.random.default_rng([int(seed), stream, int(index)]).random(len(fields))
    values = {}
    for f, ui in zip(fields, u.tolist()):
        if "categories" in f.metadata:
            values[f.name] = min(int(ui * len(f.metadata["categories"])), len(f.metadata["categories"]) - 1)
        else:
            lo, hi = f.metadata["range"]
            warp = f.metadata["warp"]
            values[f.name] = lo + (hi - lo) * (warp(ui) if warp else ui)
    return cls(**values)


def sample_identity(seed: int, identity: int) -> IdentityParams:
    """The identity factors of identity ``identity`` under ``seed`` (deterministic).

    Args:
        seed: dataset seed (non-negative integer).
        identity: identity index (non-negative integer).
    """
    return _sample(IdentityParams, seed, _IDENTITY_STREAM, identity)


def sample_expression_pose(seed: int, index: int) -> ExpressionPose:
    """The per-image factors of image ``index`` under ``seed`` (deterministic).

    Args:
        seed: dataset seed (non-negative integer).
        index: image index (non-negative integer).
    """
    return _sample(ExpressionPose, seed, _IMAGE_STREAM, index)


def _names(cls: type) -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        if "categories" in f.metadata:
            out += [f"{f.name}={c}" for c in f.metadata["categories"]]
        else:
            out.append(f.name)
    return out


def _encode(obj) -> list[float]:
    out: list[float] = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if "categories" in f.metadata:
            out += [1.0 if k == v else 0.0 for k in range(len(f.metadata["categories"]))]
        else:
            lo, hi = f.metadata["range"]
            out.append(2.0 * (v - lo) / (hi - lo) - 1.0)
    return out


def factor_names() -> list[str]:
    """Names of the entries of :func:`encode_factors`: identity factors (hair style one-hot
    as ``hair_style=<name>``), then per-image factors."""
    return _names(IdentityParams) + _names(ExpressionPose)


def encode_factors(identity: IdentityParams, expression_pose: ExpressionPose) -> torch.Tensor:
    """Normalised factor vector ``(F,)`` float32: continuous factors mapped from their
    sampling range to ``[-1, 1]``, the hair style one-hot; order of :func:`factor_names`.

    Args:
        identity: identity factors.
        expression_pose: per-image factors.
    """
    return torch.tensor(_encode(identity) + _encode(expression_pose), dtype=torch.float32)


# ---------------------------------------------------------------------------------------
# Scene derivation (per image, Python float64 math)
# ---------------------------------------------------------------------------------------


def _palette(pal, t: float) -> tuple[float, float, float]:
    t = min(max(t, 0.0), 1.0) * (len(pal) - 1)
    k = min(int(t), len(pal) - 2)
    w = t - k
    return tuple(pal[k][c] * (1.0 - w) + pal[k + 1][c] * w for c in range(3))


# Per-style hair geometry. The front hair is the hair hull (an ellipse around the skull,
# united with a rounded box hanging from it) minus a "face window": a round-topped shape
# (superellipse when square=1) between the projected temples, whose top is the hairline
# and whose sides go straight down. Keys: cap = hairline y as a fraction of b (None: no
# cap, "brow": just above the brows); temple = window half-width as a fraction of a;
# jag = fringe zig-zag amplitude; part = depth of the parting notch; side_bottom /
# back_bottom = lowest y of the front locks / of the hair behind the head (("ey", dy) is
# relative to the eye line); width = extra half-width of the hanging box; extra_vol =
# added volume.
_HAIR_GEOMETRY = {
    "bald": dict(cap=None, temple=0.9, square=0.0, jag=0.0, part=0.0, side_bottom=-9.0,
                 back_bottom=-9.0, width=0.0, extra_vol=0.0),
    "short": dict(cap=-0.50, temple=0.86, square=0.6, jag=0.0, part=0.0,
                  side_bottom=("ey", 0.12), back_bottom=-9.0, width=0.0, extra_vol=0.0),
    "fringe": dict(cap="brow", temple=0.80, square=1.0, jag=0.02, part=0.0,
                   side_bottom=("ey", 0.24), back_bottom=0.2, width=0.0, extra_vol=0.01),
    "bob": dict(cap=-0.52, temple=0.76, square=0.6, jag=0.0, part=0.12, side_bottom=0.5,
                back_bottom=0.5, width=0.03, extra_vol=0.02),
    "long": dict(cap=-0.54, temple=0.76, square=0.6, jag=0.0, part=0.12, side_bottom=1.4,
                 back_bottom=1.4, width=0.04, extra_vol=0.02),
    "afro": dict(cap=-0.50, temple=0.88, square=0.6, jag=0.0, part=0.0,
                 side_bottom=("ey", 0.16), back_bottom=-0.1, width=0.0, extra_vol=0.18),
}


def _muted(rgb, saturation: float) -> tuple[float, float, float]:
    m = sum(rgb) / 3.0
    return tuple(m + saturation * (c - m) for c in rgb)


def _scene(idp: IdentityParams, ep: ExpressionPose, resolution: int) -> dict[str, float]:
    """All per-image scalars the pixel shader needs (head units unless stated)."""
    if not 0 <= idp.hair_style < len(HAIR_STYLES):
        raise ValueError(f"hair_style must index HAIR_STYLES {HAIR_STYLES}, got {idp.hair_style}")
    s: dict[str, float] = {}
    a, b = idp.face_width, idp.face_length
    yaw = ep.yaw
    cy_, sy_ = math.cos(yaw), math.sin(yaw)
    depth = 0.85 * a  # depth of the head ellipsoid in front of the rotation axis

    def surf_z(x: float) -> float:
        return depth * math.sqrt(max(0.0, 1.0 - (x / a) ** 2))

    def proj(x: float, z: float) -> float:
        return x * cy_ + z * sy_

    def fore(x: float) -> float:  # horizontal foreshortening of a feature at frontal x
        q = max(1e-3, 1.0 - (x / a) ** 2)
        dz = -depth * (x / (a * a)) / math.sqrt(q)
        return max(0.15, cy_ + dz * sy_)

    # canvas -> head transform (inverse of: head point p is shown at c + S * R(roll) p)
    scale = 0.84 * ep.scale
    s["cx"], s["cy"] = ep.offset_x, 0.1 + ep.offset_y
    s["inv_s"] = 1.0 / scale
    s["cr"], s["sr"] = math.cos(ep.roll), math.sin(ep.roll)
    s["inv_px"] = 1.0 / ((2.0 / resolution) / scale)  # 1 / (pixel size in head units)
    s["px"] = (2.0 / resolution) / scale

    # light
    ln = math.sqrt(ep.light_x ** 2 + ep.light_y ** 2 + 1.0)
    lx, ly, lz = ep.light_x / ln, ep.light_y / ln, 1.0 / ln
    s["lx"], s["ly"], s["lz"] = lx, ly, lz
    s["amb"], s["inten"] = ep.ambient, ep.light_intensity
    s["body_shade"] = ep.ambient + ep.light_intensity * max(0.0, 0.85 * lz - 0.3 * ly)

    # colours
    skin = _palette(_SKIN, idp.skin_tone)
    hair = _palette(_HAIR, idp.hair_colour)
    iris = _palette(_IRIS, idp.eye_colour)
    lip = tuple(0.85 * (0.55 * sk + 0.45 * lc) for sk, lc in zip(skin, (0.78, 0.30, 0.32)))
    brow = tuple(0.75 * h + 0.25 * 0.5 * sk for h, sk in zip(hair, skin))
    colours = {
        "skin": skin, "hair": hair, "iris": iris, "lip": lip, "brow": brow,
        "ear_in": tuple(0.72 * c for c in skin), "neck": tuple(0.8 * c for c in skin),
        "shade": tuple(0.55 * c for c in skin), "nostril": tuple(0.3 * c for c in skin),
        "bg": _muted((ep.background_r, ep.background_g, ep.background_b), 0.6),
        "shirt": _muted((ep.shirt_r, ep.shirt_g, ep.shirt_b), 0.8),
    }
    for name, rgb in colours.items():
        for c, v in zip("rgb", rgb):
            s[f"{name}_{c}"] = v

    # face outline, body
    s["a"], s["b"] = a, b
    s["inv_b"] = 1.0 / b
    s["jaw"] = idp.jaw_taper
    s["chin_shift"] = 0.18 * a * sy_
    s["head_ax"], s["head_ay"] = 1.0 / (a + 0.06), 1.0 / (b + 0.12)  # shading ellipsoid
    s["neck_w"] = 0.5 * a
    s["chin_sh_y"], s["chin_sh_ix"] = 0.95 * b, 1.0 / (0.6 * a)
    s["neckline_ix"] = 1.0 / (0.42 * a)

    # eyes, brows, cheeks, ears
    ey = idp.eye_height
    smile_pos = max(ep.smile, 0.0)
    eh = idp.eye_size * 0.52 * ep.eye_open * (1.0 - 0.18 * smile_pos) * (1.0 + 0.1 * ep.brow_raise)
    for side, tag in ((-1.0, "l"), (1.0, "r")):
        x0 = side * idp.eye_spacing
        fs = fore(x0)
        ex = proj(x0, surf_z(x0))
        ew = idp.eye_size * fs
        ri = idp.eye_size * 0.47  # iris radius
        s[f"e{tag}_x"], s[f"e{tag}_y"], s[f"e{tag}_w"], s[f"e{tag}_iw"] = ex, ey, ew, 1.0 / ew
        s[f"e{tag}_up"], s[f"e{tag}_lo"] = eh, 0.7 * eh
        s[f"e{tag}_sock_y"], s[f"e{tag}_sock_ix"] = ey - 0.02, 1.0 / (1.35 * ew)
        s[f"e{tag}_lash_w"], s[f"e{tag}_lid_w"] = 1.08 * ew, 0.9 * ew
        icx = ex + ep.gaze_x * ew * 0.38
        icy = ey + ep.gaze_y * eh * 0.25 - 0.12 * eh
        s[f"i{tag}_x"], s[f"i{tag}_y"] = icx, icy
        s[f"i{tag}_irx"], s[f"i{tag}_iry"] = 1.0 / (ri * fs), 1.0 / ri
        s[f"i{tag}_rmin"] = ri * min(fs, 1.0)
        s[f"p{tag}_irx"], s[f"p{tag}_iry"] = 1.0 / (0.45 * ri * fs), 1.0 / (0.45 * ri)
        s[f"p{tag}_rmin"] = 0.45 * ri * min(fs, 1.0)
        s[f"h{tag}_x"] = icx + (lx * 0.45 - 0.25) * ri * fs  # catch light towards the light
        s[f"h{tag}_y"] = icy + (ly * 0.45 - 0.25) * ri
        s[f"h{tag}_r"] = 0.2 * ri
        bx0 = side * idp.eye_spacing * 1.04
        fb = fore(bx0)
        bl = idp.eye_size * 1.3 * fb
        s[f"b{tag}_x"] = proj(bx0, surf_z(bx0))
        s[f"b{tag}_y"] = ey - idp.eye_size * 0.95 - 0.045 * ep.brow_raise + 0.012 * max(-ep.smile, 0.0)
        s[f"b{tag}_l"], s[f"b{tag}_inv_l"] = bl, side / bl  # signed: -1 at the inner end
        s[f"b{tag}_arch"] = idp.brow_arch + 0.015 * max(ep.brow_raise, 0.0)
        s[f"b{tag}_tilt"] = idp.brow_tilt - 0.02 * max(-ep.brow_raise, 0.0)  # frown: inner ends down
        s[f"b{tag}_half0"], s[f"b{tag}_half1"] = 0.39 * idp.brow_thickness, 0.11 * idp.brow_thickness
        cx0 = side * a * 0.55
        s[f"k{tag}_x"], s[f"k{tag}_y"] = proj(cx0, surf_z(cx0)), ey + 0.2
        vis = min(max(1.0 - 1.6 * side * sy_, 0.0), 1.6)  # the ear turned away shrinks
        s[f"r{tag}_x"] = side * (a * 0.97 - 0.02 * (1.0 - vis)) + a * 0.1 * sy_
        s[f"r{tag}_y"] = ey + 0.09
        s[f"r{tag}_irx"] = 1.0 / max(idp.ear_size * 0.55 * vis, 0.01)
        s[f"r{tag}_iry"] = 1.0 / idp.ear_size
    s["blush_alpha"] = 0.10 + 0.18 * smile_pos

    # nose: bridge from the eye line to the tip, which protrudes (moves more under yaw)
    top_x, top_y = proj(0.0, depth + 0.02), ey + 0.03
    tip_x, tip_y = proj(0.0, depth + idp.nose_depth), ey + idp.nose_length
    nw = idp.nose_width * cy_
    s["n_top_y"], s["n_tip_x"], s["n_w"], s["n_inv_w"] = top_y, tip_x, nw, 1.0 / nw
    shadow_off = (-1.0 if lx >= 0 else 1.0) * nw * 0.55  # flank away from the light
    s["n_sh_x0"], s["n_sh_x1"], s["n_sh_y1"] = top_x + 0.5 * shadow_off, tip_x + shadow_off, tip_y - 0.02
    s["n_shadow_alpha"] = 0.18 + 0.35 * abs(lx)
    prof_off = (1.0 if sy_ >= 0 else -1.0) * nw * 0.6  # profile line on the side turned to
    s["n_pr_x0"], s["n_pr_y0"] = top_x + 0.3 * prof_off, top_y + 0.04
    s["n_pr_x1"], s["n_pr_y1"] = tip_x + prof_off, tip_y - 0.01
    s["n_prof_alpha"] = 0.6 * min(1.0, 1.3 * abs(sy_))
    s["n_under_y"] = tip_y + 0.035
    s["n_alal_x"], s["n_alar_x"] = tip_x - 0.78 * nw, tip_x + 0.78 * nw
    s["n_ala_y"], s["n_ala_r"], s["n_ala_cut"] = tip_y - 0.008, 0.36 * nw, tip_y - 0.02
    s["n_nosl_x"], s["n_nosr_x"], s["n_nos_y"] = tip_x - 0.5 * nw, tip_x + 0.5 * nw, tip_y + 0.004
    nos_rx, nos_ry = nw * 0.3 * cy_ + 0.004, nw * 0.17
    s["n_nos_irx"], s["n_nos_iry"], s["n_nos_ry"] = 1.0 / nos_rx, 1.0 / nos_ry, min(nos_rx, nos_ry)
    s["n_hl_x"], s["n_hl_y"] = tip_x + lx * 0.02, tip_y - 0.03 + ly * 0.01

    # mouth: lips between parabolic curves; smile lifts the corners, opening shows teeth
    my = tip_y + (b - tip_y) * 0.36
    mw = idp.mouth_width * (1.0 + 0.15 * smile_pos) * fore(0.3 * idp.mouth_width)
    gap = 0.11 * ep.mouth_open
    s["m_x"], s["m_w"], s["m_inv_w"] = proj(0.0, depth * 0.9), mw, 1.0 / mw
    s["m_smile"] = 0.055 * ep.smile
    s["m_mid"] = my + 0.3 * s["m_smile"]
    s["m_gap"], s["m_gap_u"], s["m_teeth"] = gap, 0.3 * gap, 0.38 * gap
    s["m_lip_u"], s["m_lip_l"] = idp.lip_thickness * 0.75, idp.lip_thickness
    s["m_hl_dy"], s["m_hl_ix"] = 0.55 * idp.lip_thickness, 2.5 / mw
    s["m_hl_iy"] = 1.0 / (0.25 * idp.lip_thickness + 1e-3)

    # hair
    g = _HAIR_GEOMETRY[HAIR_STYLES[idp.hair_style]]

    def rel(v):
        return ey + v[1] if isinstance(v, tuple) else v

    vol = idp.hair_volume + g["extra_vol"]
    brow_y = ey - idp.eye_size * 0.95
    if g["cap"] is None:
        cap = -0.6 * b  # bald: no front hair (h_front = 0)
    elif g["cap"] == "brow":
        cap = brow_y - 0.06 + 0.3 * idp.hairline
    else:
        cap = g["cap"] * b + idp.hairline
    s["h_ell_cy"] = -0.5 * vol
    s["h_ell_ix"], s["h_ell_iy"] = 1.0 / (a + vol), 1.0 / (b + 0.9 * vol)
    s["h_ell_rmin"] = min(a + vol, b + 0.9 * vol)
    xt = g["temple"] * a
    tl, tr = proj(-xt, surf_z(xt)), proj(xt, surf_z(xt))
    win_cy = ey + 0.22
    s["w_x"], s["w_cy"] = 0.5 * (tl + tr), win_cy
    s["w_ix"], s["w_iy"] = 2.0 / (tr - tl), 1.0 / (win_cy - cap)
    s["w_rmin"] = min(0.5 * (tr - tl), win_cy - cap)
    s["w_square"] = g["square"]
    s["h_jag"] = g["jag"]
    s["h_part"] = g["part"]
    s["h_xp"] = proj(0.3 * a * (1.0 if idp.hairline >= 0 else -1.0), depth)
    s["h_side_bot"] = rel(g["side_bottom"])
    s["h_back_bot"] = rel(g["back_bottom"])
    s["h_back"] = 0.0 if g["cap"] is None else 1.0  # hair behind the head (not bald)
    s["h_front"] = 0.0 if g["cap"] is None else 1.0  # any hair in front (not bald)
    s["h_width"] = a + vol + g["width"]
    s["w_half"] = 0.5 * (tr - tl)
    return s


# ---------------------------------------------------------------------------------------
# Pixel shader (batched, element-wise only)
# ---------------------------------------------------------------------------------------


def _cov(d: torch.Tensor, inv_w) -> torch.Tensor:
    """Coverage of a shape with signed distance ``d`` (< 0 inside), ramp of width 1/inv_w
    (one pixel for anti-aliased edges, wider for soft shading)."""
    return (0.5 - d * inv_w).clamp(0.0, 1.0)


def _ellipse(x, y, cx, cy, irx, iry, rmin):
    """Approximate signed distance to an axis-aligned ellipse (1/radii given)."""
    dx = (x - cx) * irx
    dy = (y - cy) * iry
    return ((dx * dx + dy * dy).sqrt() - 1.0) * rmin


def _circle(x, y, cx, cy, r):
    dx = x - cx
    dy = y - cy
    return (dx * dx + dy * dy).sqrt() - r


def _segment(x, y, ax, ay, bx, by):
    """Distance to the segment from (ax, ay) to (bx, by); end points are (B,1,1) tensors."""
    vx = bx - ax
    vy = by - ay
    wx = x - ax
    wy = y - ay
    t = ((wx * vx + wy * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0)
    dx = wx - vx * t
    dy = wy - vy * t
    return (dx * dx + dy * dy).sqrt()


def _hanging_box(x, y, half_width, bottom, r: float = 0.12):
    """Signed distance to a box from y = -0.2 down to ``bottom``, |x| < half_width, with
    rounded corners of radius ``r``."""
    cy = (bottom - 0.2) * 0.5
    hy = (bottom + 0.2) * 0.5
    qx = x.abs() - (half_width - r)
    qy = (y - cy).abs() - (hy - r)
    ox = qx.clamp_min(0.0)
    oy = qy.clamp_min(0.0)
    return (ox * ox + oy * oy).sqrt() + torch.maximum(qx, qy).clamp_max(0.0) - r


def _tri(z):
    """Triangle wave in [0, 1] with period 1."""
    return (z - z.floor() - 0.5).abs() * 2.0


class _Canvas:
    """Premultiplied layers, channels first: (r, g, b, alpha, head-weight).

    ``over`` composites a layer in place ("over" operator); the head-weight channel
    records how much of each pixel belongs to the (per-pixel lit) head rather than the
    (flat-lit) body.
    """

    _fixed: dict = {}

    def __init__(self, acc: torch.Tensor, P: dict[str, torch.Tensor], colours: dict | None = None):
        self.acc = acc  # (B, 5, H, W)
        self.P = P
        self.colours = {} if colours is None else colours  # shared cache of (B, 5, 1, 1) colours

    def colour(self, name: str, head: bool, k: float = 1.0) -> torch.Tensor:
        key = (name, head, k)
        if key not in self.colours:
            P = self.P
            r, g, b = P[f"{name}_r"], P[f"{name}_g"], P[f"{name}_b"]
            one = torch.ones_like(r)
            h = one if head else torch.zeros_like(one)
            self.colours[key] = torch.stack([r * k, g * k, b * k, one, h], 1)  # (B, 5, 1, 1)
        return self.colours[key]

    def fixed(self, rgb, head: bool) -> torch.Tensor:
        key = (tuple(rgb), head)
        if key not in _Canvas._fixed:
            _Canvas._fixed[key] = torch.tensor([*rgb, 1.0, 1.0 if head else 0.0]).view(1, 5, 1, 1)
        return _Canvas._fixed[key]

    def over(self, alpha: torch.Tensor, colour: torch.Tensor) -> None:
        a = alpha.unsqueeze(1)
        self.acc.mul_(1.0 - a).add_(colour * a)


def _grid(P, R: int, row0: torch.Tensor, col0: torch.Tensor, h: int, w: int):
    """Head coordinates ``x, y`` (B, h, w) of the pixels of a window starting at (row0, col0).

    Pixel centres are computed from absolute pixel indices, so a pixel has the same
    coordinates whichever window it is evaluated in.
    """
    cols = (col0.view(-1, 1, 1) + torch.arange(w).view(1, 1, w)).to(torch.float32)
    rows = (row0.view(-1, 1, 1) + torch.arange(h).view(1, h, 1)).to(torch.float32)
    u = (cols + 0.5) * (2.0 / R) - 1.0  # (B, 1, w)
    v = (rows + 0.5) * (2.0 / R) - 1.0  # (B, h, 1)
    du = u - P["cx"]
    dv = v - P["cy"]
    x = (du * P["cr"] + dv * P["sr"]) * P["inv_s"]
    y = (dv * P["cr"] - du * P["sr"]) * P["inv_s"]
    return x, y, du, dv, v


def _ellipse_exact(x, y, cx, cy, irx, iry):
    """Signed distance to an axis-aligned ellipse, first-order accurate near its edge
    (the implicit function divided by its gradient norm; 1/radii given)."""
    dx = (x - cx) * irx
    dy = (y - cy) * iry
    f = (dx * dx + dy * dy).sqrt()
    gx = dx * irx
    gy = dy * iry
    return (f - 1.0) * f / (gx * gx + gy * gy).sqrt().clamp_min(1e-6)


def _draw_body(cv: _Canvas, x, y, xb, yb, ipx) -> None:
    P = cv.P
    d_neck = torch.maximum(torch.maximum(xb.abs() - P["neck_w"], 0.25 - yb), yb - 1.4)
    cv.over(_cov(d_neck, ipx), cv.colour("neck", False))
    d_chin_sh = _ellipse(xb, yb, 0.0, P["chin_sh_y"], P["chin_sh_ix"], 5.0, 0.2)
    cv.over(_cov(torch.maximum(d_chin_sh, d_neck), ipx * 0.25) * 0.5, cv.colour("neck", False, 0.6))
    d_shirt = _ellipse(xb, yb, 0.0, 1.68, 1.0 / 1.15, 1.0 / 0.75, 0.75)
    d_neckline = _ellipse(xb, yb, 0.0, 0.92, P["neckline_ix"], 1.0 / 0.22, 0.22)
    cv.over(_cov(torch.maximum(d_shirt, -d_neckline), ipx), cv.colour("shirt", False))


def _draw_ear(cv: _Canvas, x, y, xb, yb, ipx, t: str) -> None:
    P = cv.P
    irx, iry = P[f"r{t}_irx"], P[f"r{t}_iry"]
    d_ear = _ellipse_exact(x, y, P[f"r{t}_x"], P[f"r{t}_y"], irx, iry)
    cv.over(_cov(d_ear, ipx), cv.colour("skin", True, 0.93))
    d_in = _ellipse_exact(x, y, P[f"r{t}_x"], P[f"r{t}_y"], irx * 2.0, iry * 1.6)
    cv.over(_cov(d_in, ipx * 0.5) * 0.6, cv.colour("ear_in", True))


def _draw_cheek(cv: _Canvas, x, y, xb, yb, ipx, t: str) -> None:
    d = _circle(x, y, cv.P[f"k{t}_x"], cv.P[f"k{t}_y"], 0.05)
    cv.over(_cov(d, 14.0) * cv.P["blush_alpha"], cv.fixed((0.85, 0.4, 0.4), True))


def _draw_nose(cv: _Canvas, x, y, xb, yb, ipx) -> None:
    P = cv.P
    d_ns = _segment(x, y, P["n_sh_x0"], P["n_top_y"], P["n_sh_x1"], P["n_sh_y1"])
    cv.over(_cov(d_ns - 0.012, 30.0) * P["n_shadow_alpha"], cv.colour("shade", True))
    d_np = _segment(x, y, P["n_pr_x0"], P["n_pr_y0"], P["n_pr_x1"], P["n_pr_y1"])
    cv.over(_cov(d_np - 0.004, ipx) * P["n_prof_alpha"], cv.colour("shade", True))
    d_under = _ellipse(x, y, P["n_tip_x"], P["n_under_y"], P["n_inv_w"], 1.0 / 0.022, 0.022)
    cv.over(_cov(d_under, 40.0) * 0.35, cv.colour("shade", True))
    for t in "lr":
        d_ala = _circle(x, y, P[f"n_ala{t}_x"], P["n_ala_y"], P["n_ala_r"])
        ring = torch.maximum(d_ala.abs() - 0.006, P["n_ala_cut"] - y)
        cv.over(_cov(ring, ipx) * 0.45, cv.colour("shade", True))
        d_nos = _ellipse(x, y, P[f"n_nos{t}_x"], P["n_nos_y"], P["n_nos_irx"], P["n_nos_iry"], P["n_nos_ry"])
        cv.over(_cov(d_nos, ipx) * 0.85, cv.colour("nostril", True))
    d_hl = _ellipse(x, y, P["n_hl_x"], P["n_hl_y"], P["n_inv_w"] * 2.0, 1.0 / 0.02, 0.02)
    cv.over(_cov(d_hl, 40.0) * 0.25, cv.fixed((1.0, 0.97, 0.95), True))


def _draw_eye(cv: _Canvas, x, y, xb, yb, ipx, t: str) -> None:
    P = cv.P
    ex, ey, ew = P[f"e{t}_x"], P[f"e{t}_y"], P[f"e{t}_w"]
    tt = (x - ex) * P[f"e{t}_iw"]
    p = (1.0 - tt * tt).clamp_min(0.0)
    y_up = ey - P[f"e{t}_up"] * p
    y_lo = ey + P[f"e{t}_lo"] * p
    x_in = (x - ex).abs()
    # socket shading
    d_sock = _ellipse(x, y, ex, P[f"e{t}_sock_y"], P[f"e{t}_sock_ix"], 1.0 / 0.075, 0.075)
    cv.over(_cov(d_sock, 25.0) * 0.22, cv.colour("shade", True))
    # white (almond between two parabolic lids), iris, pupil, catch light
    white = _cov(torch.maximum(torch.maximum(y_up - y, y - y_lo), x_in - ew), ipx)
    cv.over(white, cv.fixed((0.95, 0.94, 0.91), True))
    ix, iy = P[f"i{t}_x"], P[f"i{t}_y"]
    d_iris = _ellipse(x, y, ix, iy, P[f"i{t}_irx"], P[f"i{t}_iry"], P[f"i{t}_rmin"])
    cv.over(torch.minimum(_cov(d_iris, ipx), white), cv.colour("iris", True))
    d_pupil = _ellipse(x, y, ix, iy, P[f"p{t}_irx"], P[f"p{t}_iry"], P[f"p{t}_rmin"])
    cv.over(torch.minimum(_cov(d_pupil, ipx), white), cv.fixed((0.04, 0.03, 0.03), True))
    d_hi = _circle(x, y, P[f"h{t}_x"], P[f"h{t}_y"], P[f"h{t}_r"])
    cv.over(torch.minimum(_cov(d_hi, ipx), white) * 0.9, cv.fixed((1.0, 1.0, 1.0), True))
    # upper lid / lash line (thicker in the middle), lid crease, lower lid
    d_lash = torch.maximum((y - y_up).abs() - 0.006 - 0.006 * p, x_in - P[f"e{t}_lash_w"])
    cv.over(_cov(d_lash, ipx), cv.fixed((0.08, 0.05, 0.05), True))
    inner_w = x_in - P[f"e{t}_lid_w"]
    d_crease = torch.maximum((y - (y_up - 0.028 * p - 0.01)).abs() - 0.003, inner_w)
    cv.over(_cov(d_crease, ipx) * 0.35, cv.colour("shade", True))
    d_low = torch.maximum((y - y_lo).abs() - 0.003, inner_w)
    cv.over(_cov(d_low, ipx) * 0.3, cv.colour("shade", True))
    # eyebrow: tapered stroke along an arched, tilted curve
    bx = P[f"b{t}_x"]
    tb = (x - bx) * P[f"b{t}_inv_l"]  # -1 inner end, +1 outer end
    yc = P[f"b{t}_y"] - P[f"b{t}_arch"] * (1.0 - tb * tb) - P[f"b{t}_tilt"] * tb
    half = P[f"b{t}_half0"] - P[f"b{t}_half1"] * tb
    d_brow = torch.maximum((y - yc).abs() - half, (x - bx).abs() - P[f"b{t}_l"])
    cv.over(_cov(d_brow, ipx), cv.colour("brow", True))


def _draw_mouth(cv: _Canvas, x, y, xb, yb, ipx) -> None:
    P = cv.P
    tm = (x - P["m_x"]) * P["m_inv_w"]
    tm2 = tm * tm
    pm = (1.0 - tm2).clamp_min(0.0)
    spm = pm.sqrt()
    mid = P["m_mid"] - P["m_smile"] * tm2  # corners up when smiling
    y_iu = mid - P["m_gap_u"] * pm
    y_il = mid + P["m_gap"] * pm
    cupid = (1.0 - tm2 * 25.0).clamp_min(0.0)
    y_uu = y_iu - P["m_lip_u"] * (0.3 + 0.7 * spm - 0.3 * cupid)
    y_ll = y_il + P["m_lip_l"] * spm
    x_out = (x - P["m_x"]).abs() - P["m_w"]
    cv.over(_cov(torch.maximum(torch.maximum(y_uu - y, y - y_ll), x_out), ipx), cv.colour("lip", True))
    inner = _cov(torch.maximum(torch.maximum(y_iu - y, y - y_il), x_out), ipx)
    cv.over(inner, cv.fixed((0.22, 0.05, 0.06), True))
    d_teeth = torch.maximum(y - (y_iu + P["m_teeth"]), tm.abs() - 0.72)
    cv.over(torch.minimum(_cov(d_teeth, ipx), inner), cv.fixed((0.93, 0.91, 0.86), True))
    d_line = torch.maximum((y - mid).abs() - 0.005, x_out + 0.005)
    cv.over(_cov(d_line, ipx) * 0.85, cv.fixed((0.25, 0.07, 0.07), True))
    d_llhl = _ellipse(x, y, P["m_x"], y_il + P["m_hl_dy"], P["m_hl_ix"], P["m_hl_iy"], 0.01)
    cv.over(_cov(d_llhl, 60.0) * 0.2, cv.fixed((1.0, 0.9, 0.9), True))


#: Layers drawn on small per-image windows, below the face skin and above it, in order.
_UNDER_FACE = ("body", "ear_l", "ear_r")
_OVER_FACE = ("cheek_l", "cheek_r", "nose", "eye_l", "eye_r", "mouth")
_WINDOWED = _UNDER_FACE + _OVER_FACE

_DRAW = {
    "body": _draw_body,
    "ear_l": lambda *a: _draw_ear(*a, "l"),
    "ear_r": lambda *a: _draw_ear(*a, "r"),
    "cheek_l": lambda *a: _draw_cheek(*a, "l"),
    "cheek_r": lambda *a: _draw_cheek(*a, "r"),
    "nose": _draw_nose,
    "eye_l": lambda *a: _draw_eye(*a, "l"),
    "eye_r": lambda *a: _draw_eye(*a, "r"),
    "mouth": _draw_mouth,
}


def _feature_boxes(s: dict[str, float]) -> dict[str, tuple[float, float, float, float]]:
    """Head-unit boxes (x0, x1, y0, y1) that contain every non-zero pixel of each windowed
    layer (the body, whose window is a band of whole rows, is handled by the caller).

    Soft shapes reach beyond their nominal size by their ramp; the bounds include it
    (:func:`_ellipse` scales by the smaller radius, so its reach along the longer axis is
    ``radius * (1 + ramp / rmin)``).
    """
    m = 2.0 * s["px"] + 0.01
    boxes = {}
    for t in "lr":
        rx, ry = 1.0 / s[f"r{t}_irx"], 1.0 / s[f"r{t}_iry"]
        boxes[f"ear_{t}"] = (s[f"r{t}_x"] - rx - m, s[f"r{t}_x"] + rx + m,
                             s[f"r{t}_y"] - ry - m, s[f"r{t}_y"] + ry + m)
        reach = 0.05 + 0.5 / 14.0 + m
        boxes[f"cheek_{t}"] = (s[f"k{t}_x"] - reach, s[f"k{t}_x"] + reach,
                               s[f"k{t}_y"] - reach, s[f"k{t}_y"] + reach)
        ex, ey, ew, eh = s[f"e{t}_x"], s[f"e{t}_y"], s[f"e{t}_w"], s[f"e{t}_up"]
        bx, by, bl = s[f"b{t}_x"], s[f"b{t}_y"], s[f"b{t}_l"]
        sock = 1.35 * ew * (1.0 + 0.02 / 0.075)
        top = min(by - s[f"b{t}_arch"] - abs(s[f"b{t}_tilt"]) - 2.0 * s[f"b{t}_half0"],
                  s[f"e{t}_sock_y"] - 0.095, ey - eh - 0.05)
        bottom = max(s[f"e{t}_sock_y"] + 0.095, ey + 0.7 * eh + 0.01)
        boxes[f"eye_{t}"] = (min(ex - sock, ex - 1.08 * ew, bx - bl) - m,
                             max(ex + sock, ex + 1.08 * ew, bx + bl) + m, top - m, bottom + m)
    nw = s["n_w"]
    xs = [s["n_sh_x0"], s["n_sh_x1"], s["n_pr_x0"], s["n_pr_x1"]]
    reach = 0.012 + 0.5 / 30.0
    x0 = min(min(xs) - reach, s["n_tip_x"] - 1.6 * nw - 0.01, s["n_hl_x"] - 0.82 * nw)
    x1 = max(max(xs) + reach, s["n_tip_x"] + 1.6 * nw + 0.01, s["n_hl_x"] + 0.82 * nw)
    y0 = min(s["n_top_y"] - reach, s["n_hl_y"] - 0.033)
    y1 = s["n_under_y"] + 0.022 * (1.0 + 0.0125 / 0.022) + 0.01
    boxes["nose"] = (x0 - m, x1 + m, y0 - m, y1 + m)
    sm = abs(s["m_smile"])  # the lip line bends by up to |smile| either way
    boxes["mouth"] = (s["m_x"] - s["m_w"] - m, s["m_x"] + s["m_w"] + m,
                      s["m_mid"] - sm - s["m_gap_u"] - s["m_lip_u"] - 0.01 - m,
                      s["m_mid"] + sm + s["m_gap"] + 1.1 * s["m_lip_l"] + 0.01 + m)
    return boxes


def _feature_windows(s: dict[str, float], R: int) -> list[tuple[int, int, int, int]]:
    """Pixel windows (row0, col0, h, w) of the :data:`_WINDOWED` layers of one image,
    clipped to the image (h or w is 0 when the layer is outside it)."""
    S = 1.0 / s["inv_s"]
    cr, sr = s["cr"], s["sr"]
    boxes = _feature_boxes(s)
    out = []
    for name in _WINDOWED:
        if name == "body":  # whole rows below the top of the neck (body space has no roll)
            v_top = s["cy"] + S * (0.25 - 2.0 * s["px"] - 0.01)
            r0 = min(max(math.floor((v_top + 1.0) * R / 2.0 - 0.5) - 1, 0), R)
            out.append((r0, 0, R - r0, R))
            continue
        x0, x1, y0, y1 = boxes[name]
        cols, rows = [], []
        for hx in (x0, x1):
            for hy in (y0, y1):
                cols.append((s["cx"] + S * (cr * hx - sr * hy) + 1.0) * R / 2.0 - 0.5)
                rows.append((s["cy"] + S * (sr * hx + cr * hy) + 1.0) * R / 2.0 - 0.5)
        c0 = min(max(math.floor(min(cols)) - 1, 0), R)
        c1 = min(max(math.ceil(max(cols)) + 2, 0), R)
        r0 = min(max(math.floor(min(rows)) - 1, 0), R)
        r1 = min(max(math.ceil(max(rows)) + 2, 0), R)
        out.append((r0, c0, max(r1 - r0, 0), max(c1 - c0, 0)))
    return out


def _draw_windowed(cv: _Canvas, name: str, ipx, R: int, win: torch.Tensor | None) -> None:
    """Draw one layer group on its per-image window (``win`` (B, 4) int64 rows of
    (row0, col0, h, w)); ``win=None`` draws on the whole canvas (reference path)."""
    P = cv.P
    B, _, H, W = cv.acc.shape
    if win is None:
        zero = torch.zeros(B, dtype=torch.int64)
        x, y, du, dv, _ = _grid(P, R, zero, zero, H, W)
        _DRAW[name](cv, x, y, du * P["inv_s"], dv * P["inv_s"], ipx)
        return
    h, w = int(win[:, 2].max()), int(win[:, 3].max())
    if h == 0 or w == 0:
        return
    # one window size for the batch, placed to contain each image's own window
    r0 = torch.minimum(win[:, 0], torch.full_like(win[:, 0], H - h)).view(B, 1, 1, 1)
    c0 = torch.minimum(win[:, 1], torch.full_like(win[:, 1], W - w)).view(B, 1, 1, 1)
    rows = r0 + torch.arange(h).view(1, 1, h, 1)
    cols = c0 + torch.arange(w).view(1, 1, 1, w)
    base = torch.arange(B).view(B, 1, 1, 1) * 5 + torch.arange(5).view(1, 5, 1, 1)
    flat = (base * H + rows) * W + cols  # (B, 5, h, w) indices into the flat canvas
    old = cv.acc.take(flat)
    sub = _Canvas(old.clone(), P, cv.colours)
    x, y, du, dv, _ = _grid(P, R, r0.view(B), c0.view(B), h, w)
    _DRAW[name](sub, x, y, du * P["inv_s"], dv * P["inv_s"], ipx)
    # keep only each image's own window, so that the result does not depend on the batch
    lr = rows - win[:, 0].view(B, 1, 1, 1)
    lc = cols - win[:, 1].view(B, 1, 1, 1)
    own = (lr >= 0) & (lr < win[:, 2].view(B, 1, 1, 1)) & (lc >= 0) & (lc < win[:, 3].view(B, 1, 1, 1))
    cv.acc.put_(flat, torch.where(own, sub.acc, old))


def _shade(P: dict[str, torch.Tensor], resolution: int, windows: torch.Tensor | None, need_mask: bool):
    """Render images (B,3,H,W) float in [0,1] and the visible-face mask (B,H,W).

    Layers whose coverage is zero for every image of the batch (for example the hair of
    an all-bald batch) are skipped; compositing a zero layer is an exact no-op, so this
    does not change any pixel.

    Args:
        P: per-image scalars from :func:`_scene`, each (B, 1, 1).
        resolution: output size R.
        windows: (B, len(_WINDOWED), 4) windows from :func:`_feature_windows`; ``None``
            evaluates every layer on the whole image (slow reference path).
        need_mask: also return the face mask.
    """
    B = P["cx"].shape[0]
    R = resolution
    zero = torch.zeros(B, dtype=torch.int64)
    x, y, du, dv, v = _grid(P, R, zero, zero, R, R)
    ipx = P["inv_px"]
    cv = _Canvas(torch.zeros(B, 5, R, R), P)
    has_back = bool((P["h_back"] > 0).any())
    has_front = bool((P["h_front"] > 0).any())

    # ---- hair behind the head, body, ears
    if has_back or has_front:
        d_hell = _ellipse(x, y, 0.0, P["h_ell_cy"], P["h_ell_ix"], P["h_ell_iy"], P["h_ell_rmin"])
    if has_back:
        d_back = torch.minimum(d_hell, _hanging_box(x, y, P["h_width"], P["h_back_bot"]))
        cv.over(_cov(d_back, ipx) * P["h_back"], cv.colour("hair", True, 0.8))
    for k, name in enumerate(_UNDER_FACE):
        _draw_windowed(cv, name, ipx, R, None if windows is None else windows[:, k])

    # ---- face: ellipse with a tapered jaw, chin pulled towards the yaw
    yn = (y * P["inv_b"]).clamp(0.0, 1.0)
    yn2 = yn * yn
    a_eff = P["a"] * (1.0 - P["jaw"] * yn2)
    dx = (x - P["chin_shift"] * yn2) / a_eff
    dy = y * P["inv_b"]
    f = (dx * dx + dy * dy).sqrt()
    face_cov = _cov((f - 1.0) * torch.minimum(a_eff, P["b"]), ipx)
    cv.over(face_cov, cv.colour("skin", True))

    # ---- facial features
    for k, name in enumerate(_OVER_FACE, start=len(_UNDER_FACE)):
        _draw_windowed(cv, name, ipx, R, None if windows is None else windows[:, k])

    # ---- front hair: hull minus the face window (hairline on top, locks at the sides)
    front = None
    if has_front:
        d_hull = torch.minimum(d_hell, _hanging_box(x, y, P["h_width"], P["h_side_bot"]))
        xw = x - P["w_x"]
        yw = y - P["w_cy"]
        if bool((P["h_part"] != 0).any()):  # parting notch (long, bob)
            yw = yw + P["h_part"] * (1.0 - (x - P["h_xp"]).abs() * 10.0).clamp_min(0.0)
        if bool((P["h_jag"] != 0).any()):  # zig-zag fringe
            yw = yw - P["h_jag"] * (_tri(xw * 14.0) - 0.5) * 2.0
        wdx = xw * P["w_ix"]
        wdy = (yw * P["w_iy"]).clamp_max(0.0)  # straight sides below the window centre
        wdx2 = wdx * wdx
        wdy2 = wdy * wdy
        wf = (wdx2 + wdy2).sqrt()
        if bool((P["w_square"] != 0).any()):  # squarer window (fringe)
            wf = wf + ((wdx2 * wdx2 + wdy2 * wdy2).sqrt().sqrt() - wf) * P["w_square"]
        d_win = (wf - 1.0) * P["w_rmin"]
        # the locks end on a line rising outwards from the window edge
        d_bottom = y - P["h_side_bot"] + 0.6 * (xw.abs() - P["w_half"]).clamp_min(0.0)
        front = _cov(torch.maximum(torch.maximum(d_hull, -d_win), d_bottom), ipx) * P["h_front"]
        cv.over(front, cv.colour("hair", True))

    # ---- Lambertian head ellipsoid, flat-lit body, background gradient
    nx = x * P["head_ax"]
    ny = (y + 0.05) * P["head_ay"]
    r2 = nx * nx + ny * ny
    nz = (1.0 - r2).clamp_min(0.0).sqrt()
    inv = 1.0 / r2.sqrt().clamp_min(1.0)
    lam = ((nx * P["lx"] + ny * P["ly"]) * inv + nz * P["lz"]).clamp_min(0.0)
    head_shade = P["amb"] + P["inten"] * lam
    acc = cv.acc
    shade = P["body_shade"] + (head_shade - P["body_shade"]) * acc[:, 4]
    bg = torch.stack([P["bg_r"], P["bg_g"], P["bg_b"]], 1) * (1.06 - 0.12 * v).unsqueeze(1)  # (B,3,H,1)
    img = bg * (1.0 - acc[:, 3:4]) + acc[:, :3] * shade.unsqueeze(1)
    img = img.clamp(0.0, 1.0)
    mask = None
    if need_mask:
        mask = face_cov if front is None else face_cov * (1.0 - front)
    return img, mask


def render_faces(
    identities: Sequence[IdentityParams],
    expression_poses: Sequence[ExpressionPose],
    resolution: int = 64,
    batch_size: int | None = None,
    return_mask: bool = False,
    progress: bool = False,
    num_threads: int | None = 1,
    full_frame: bool = False,
):
    """Render faces: ``identities[k]`` with ``expression_poses[k]`` for every k.

    Args:
        identities: identity factors, one per image.
        expression_poses: per-image factors, as many as ``identities``.
        resolution: output height and width in pixels (16 to 512; designed for 32-256).
        batch_size: images per vectorised pass; ``None`` picks about 2**17 pixels per pass
            (the working set then stays in the CPU cache). Does not change the result.
        return_mask: also return the visible face-skin coverage ``(N, H, W)`` float in
            ``[0, 1]`` (face minus hair in front of it); ``False`` returns images only.
        progress: show a tqdm progress bar.
        num_threads: torch intra-op threads while rendering (restored afterwards); 1 is
            fastest for these small element-wise passes, above all on a busy machine;
            ``None`` keeps the current setting. Does not change the result.
        full_frame: evaluate the eyes, nose and mouth on the whole image instead of on
            small per-image windows around them (slower reference path; same pixels).

    Returns:
        ``uint8`` images ``(N, 3, H, W)`` (and the mask when ``return_mask``).
    """
    if len(identities) != len(expression_poses):
        raise ValueError(
            f"got {len(identities)} identities but {len(expression_poses)} expression/poses"
        )
    if not 16 <= int(resolution) <= 512:
        raise ValueError(f"resolution must be in [16, 512], got {resolution}")
    R = int(resolution)
    N = len(identities)
    bs = batch_size or max(1, (1 << 17) // (R * R))
    out = torch.empty(N, 3, R, R, dtype=torch.uint8)
    masks = torch.empty(N, R, R) if return_mask else None
    starts = range(0, N, bs)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"rendering synthetic faces ({R}px)", unit="batch")
    # batches of one hair style skip the other styles' hair layers (exactly: see _shade)
    order = sorted(range(N), key=lambda k: identities[k].hair_style)
    identities = [identities[k] for k in order]
    expression_poses = [expression_poses[k] for k in order]
    order_t = torch.tensor(order, dtype=torch.int64)
    names = None
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        for s0 in starts:
            scenes = [_scene(i, e, R) for i, e in zip(identities[s0:s0 + bs], expression_poses[s0:s0 + bs])]
            names = names or list(scenes[0])
            table = torch.tensor([[sc[n] for n in names] for sc in scenes], dtype=torch.float32)
            P = dict(zip(names, table.t().reshape(len(names), -1, 1, 1).unbind(0)))
            windows = None if full_frame else torch.tensor([_feature_windows(sc, R) for sc in scenes])
            with torch.no_grad():
                img, mask = _shade(P, R, windows, return_mask)
            dest = order_t[s0:s0 + len(scenes)]
            out[dest] = img.mul(255.0).round().to(torch.uint8)
            if return_mask:
                masks[dest] = mask
    finally:
        torch.set_num_threads(threads)
    return (out, masks) if return_mask else out


# ---------------------------------------------------------------------------------------
# Dataset
# ---------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """``$GENFACE_CACHE/synthetic`` when ``GENFACE_CACHE`` is set, else ``~/.cache/genface/synthetic``."""
    from genface.utils import cache_dir

    return cache_dir("synthetic", create=False)


class SyntheticFaces(Dataset):
    """Procedurally rendered synthetic faces with known identity and per-image factors.

    Image ``i`` shows identity ``i % num_identities`` with the per-image factors
    :func:`sample_expression_pose` ``(seed, i)``; identity ``k`` has the factors
    :func:`sample_identity` ``(seed, k)``. The rendered set is cached as ``uint8`` in a
    safetensors file keyed by every argument that changes the pixels.

    Args:
        num_images: number of images N.
        num_identities: number of distinct identities (each gets about N / num_identities
            images).
        resolution: image height and width in pixels (32 to 256 recommended; 16-512 accepted).
        seed: seed of all factors (non-negative integer); same seed, same images.
        cache_dir: folder of the cache file; ``None`` uses :func:`default_cache_dir`
            (``$GENFACE_CACHE/synthetic`` or ``~/.cache/genface/synthetic``).
        cache: ``True`` loads the cache when present and writes it (atomically: temporary
            file then rename) after rendering; ``False`` always renders and writes nothing.
        progress: show a progress bar while rendering; ``False`` renders silently.

    Samples are dicts: ``"image"`` float32 ``(3, H, W)`` in ``[-1, 1]``, ``"identity"``
    int64 scalar, ``"factors"`` float32 ``(F,)`` normalised factors named by
    :attr:`factor_names`.
    """

    def __init__(
        self,
        num_images: int = 10000,
        num_identities: int = 100,
        resolution: int = 64,
        seed: int = 0,
        cache_dir: str | Path | None = None,
        cache: bool = True,
        progress: bool = False,
    ):
        if num_images < 1 or num_identities < 1:
            raise ValueError(f"num_images and num_identities must be >= 1, got {num_images}, {num_identities}")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        if not 16 <= resolution <= 512:
            raise ValueError(f"resolution must be in [16, 512], got {resolution}")
        self.num_images, self.num_identities = int(num_images), int(num_identities)
        self.resolution, self.seed = int(resolution), int(seed)
        self.identities = torch.arange(self.num_images, dtype=torch.int64) % self.num_identities
        self._identity_params = [sample_identity(self.seed, k) for k in range(self.num_identities)]
        self._expression_poses = [sample_expression_pose(self.seed, i) for i in range(self.num_images)]
        self.factor_names: list[str] = factor_names()
        id_codes = torch.tensor([_encode(p) for p in self._identity_params], dtype=torch.float32)
        ep_codes = torch.tensor([_encode(e) for e in self._expression_poses], dtype=torch.float32)
        self.factors = torch.cat([id_codes[self.identities], ep_codes], 1)  # (N, F)
        self.cache_path: Path | None = None
        if cache:
            folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
            self.cache_path = folder / (
                f"faces_v{RENDERER_VERSION}_n{self.num_images}_k{self.num_identities}"
                f"_r{self.resolution}_s{self.seed}.safetensors"
            )
        self.images: torch.Tensor = self._load() if self.cache_path is not None else None
        if self.images is None:
            self.images = self.render_batch(
                self.identities.tolist(), self._expression_poses, progress=progress
            )
            if self.cache_path is not None:
                self._save()

    # ---- cache
    def _load(self) -> torch.Tensor | None:
        if not self.cache_path.is_file():
            return None
        from safetensors.torch import load_file

        try:
            images = load_file(self.cache_path)["images"]
        except Exception as err:  # a corrupt or foreign file: re-render and overwrite
            warnings.warn(f"ignoring unreadable cache {self.cache_path}: {err}", stacklevel=3)
            return None
        expected = (self.num_images, 3, self.resolution, self.resolution)
        if tuple(images.shape) != expected or images.dtype != torch.uint8:
            warnings.warn(f"ignoring cache {self.cache_path} of shape {tuple(images.shape)}", stacklevel=3)
            return None
        return images

    def _save(self) -> None:
        from safetensors.torch import save_file

        from genface.provenance import PROVENANCE

        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_path.with_name(f".{self.cache_path.name}.{os.getpid()}.tmp")
        meta = {**PROVENANCE, "renderer_version": str(RENDERER_VERSION), "seed": str(self.seed),
                "num_identities": str(self.num_identities)}
        try:
            save_file({"images": self.images.contiguous()}, str(tmp), metadata=meta)
            os.replace(tmp, self.cache_path)
        finally:
            if tmp.exists():
                tmp.unlink()

    # ---- Dataset protocol
    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "image": self.images[i].float().div(127.5).sub(1.0),
            "identity": self.identities[i].clone(),
            "factors": self.factors[i].clone(),
        }

    # ---- factors and rendering
    def identity_params(self, identity: int) -> IdentityParams:
        """Identity factors of identity index ``identity`` (0 .. num_identities - 1)."""
        identity = int(identity)
        if not 0 <= identity < self.num_identities:
            raise IndexError(f"identity {identity} out of range [0, {self.num_identities})")
        return self._identity_params[identity]

    def expression_pose(self, i: int) -> ExpressionPose:
        """Expression, pose, lighting and background of image ``i``."""
        return self._expression_poses[int(i)]

    def _as_identity(self, identity) -> IdentityParams:
        if isinstance(identity, IdentityParams):
            return identity
        return self.identity_params(int(identity))

    def render(self, identity, expression_pose: ExpressionPose, resolution: int | None = None) -> torch.Tensor:
        """Render one face as ``uint8`` ``(3, H, W)``.

        Args:
            identity: an identity index of this dataset (int or int64 scalar tensor) or an
                :class:`IdentityParams`.
            expression_pose: the per-image factors, e.g. ``self.expression_pose(i)``;
                ``render(j, self.expression_pose(i))`` is the exact ground truth of swapping
                identity ``j`` into image ``i``.
            resolution: output size; ``None`` uses the dataset's resolution.
        """
        return self.render_batch([identity], [expression_pose], resolution)[0]

    def render_batch(
        self,
        identities: Sequence,
        expression_poses: Sequence[ExpressionPose],
        resolution: int | None = None,
        return_mask: bool = False,
        progress: bool = False,
    ):
        """Batched :meth:`render`: ``uint8`` ``(N, 3, H, W)``.

        Args:
            identities: identity indices or :class:`IdentityParams`, one per image.
            expression_poses: per-image factors, one per image.
            resolution: output size; ``None`` uses the dataset's resolution.
            return_mask: also return the visible face-skin mask, see :func:`render_faces`.
            progress: show a progress bar.
        """
        return render_faces(
            [self._as_identity(k) for k in identities], list(expression_poses),
            resolution or self.resolution, return_mask=return_mask, progress=progress,
        )
