"""Face-swap metrics: who the swapped face is, and whether the expression and pose were kept.

All metrics need ``"swapper"``: ``swap_fn(x, target) -> y`` with ``x`` ``(N, 3, H, W)`` in
``[-1, 1]`` (faces of some identity), ``target`` the index of the identity to swap to
(0 = A, 1 = B), and ``y`` of the same shape and range; and ``swap_data``, a
:class:`SwapEvalSet` of held-out faces (built by
:meth:`genface.data.swap.SwapDataModule.swap_eval_data`).

Real faces (the FaceShifter / SimSwap protocol, Li et al. 2019; Chen et al. 2020, with what is
available offline; every judgement made by dlib, never by the network that was trained):

* ``swap_id_dlib``: **ID retrieval top-1**: the share of swaps A->B whose nearest identity
  among all identities of a labelled gallery (dlib's 128-d ResNet descriptor, King 2017,
  nearest gallery face by Euclidean distance) is B. A swap in which no face is found is a
  failed retrieval and counts in the denominator. Extras: ``/detected`` (the **detection
  rate** of swaps), ``/leakage`` (mean descriptor distance of the swaps to A's gallery centre:
  the identity leakage the thesis names as the open problem), ``/dist_b`` (to B's centre),
  and the same numbers for the do-nothing baseline (``/noswap_*``: the source faces
  themselves) and for real photos of B (``/real_b_*``).
* ``swap_pose_dlib``: **pose and expression error**: mean distance between dlib's 68
  landmarks on each source face and on its swap, over the source's inter-ocular distance
  (outer eye corners, NME); swaps without a face are left out of the mean and counted in
  ``/detected``. Beside it ``/real_b`` (the same error of a real photo of B in the same
  conditions, e.g. Extended Yale B's same light) and ``/recon`` (A->A reconstructions: the
  model's floor).
* ``swap_temporal``: **temporal consistency** of a video swap: the frame-to-frame change of
  the swapped frames over that of the source frames (mean absolute difference of
  consecutive frames, inside the face mask when one is given); 1 = the swap moves exactly
  as much as the source, > 1 = flicker. ``/swap_diff`` and ``/source_diff`` are the two means.

SyntheticFaces (the exact factors are known):

* ``swap_synth_factors``: **identity transfer**: genface's SyntheticFaces net
  (:mod:`genface.metrics.synth_net`, trained on rendered factors of other identities)
  regresses the identity factors from the swap; the share of swaps (both ways) whose
  regressed identity factors are nearer the target's centre than the source's (centres:
  the mean regressed identity factors of the real renders of A and of B). **Attribute preservation**: the mean absolute error between the expression and pose
  factors regressed from the swap and A's true ones (``/attr_error``; normalised units,
  ``[-1, 1]`` per factor), beside the same error on the exact ground truth swap
  (``/attr_error_truth``: the regressor's floor).
* ``swap_synth_gt``: **exact error**: MAE (headline), PSNR and SSIM of the swaps against the
  rendered ground truth, and the MAE of the unswapped input (``/noswap_mae``: the
  do-nothing baseline a swap has to beat).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from genface.metrics.registry import EvalContext, register_metric

__all__ = [
    "SwapEvalSet",
    "SwapFaceJudge",
    "landmark_error",
    "temporal_consistency",
    "identity_distances",
    "SWAP_METRICS",
    "swap_metric_names",
]

#: Every registered swap metric.
SWAP_METRICS = ("swap_id_dlib", "swap_pose_dlib", "swap_temporal", "swap_synth_factors", "swap_synth_gt")


@dataclasses.dataclass
class SwapEvalSet:
    """Held-out faces to swap, and what the swaps are judged against.

    All images are float ``(N, 3, H, W)`` in ``[-1, 1]`` at the swapper's resolution.

    Args:
        faces_a: held-out faces of A (swapped A->B).
        faces_b: held-out faces of B (swapped B->A).
        gallery: labelled real faces of every identity of the set (for ID retrieval);
            None = no gallery (the dlib metrics are then skipped, NaN).
        gallery_labels: ``(G,)`` int labels of ``gallery``.
        label_a: the gallery label of A.
        label_b: the gallery label of B.
        b_like_a: ``(N, 3, H, W)``: a real photo of B in the conditions of ``faces_a[i]``
            (Extended Yale B: the same light), the baseline a swap should match; rows of
            ``b_valid`` False have none. None = no such photos.
        b_valid: ``(N,)`` bool, which rows of ``b_like_a`` are real.
        truth_a_as_b: exact ground truth of swapping ``faces_a`` into B (SyntheticFaces).
        truth_b_as_a: exact ground truth of swapping ``faces_b`` into A.
        factors_a: ``(N, F)`` normalised factors of ``faces_a`` (SyntheticFaces' ``factors``).
        factors_b: ``(N, F)`` factors of ``faces_b``.
        factor_names: names of the ``F`` factors (:func:`genface.data.synthetic.factor_names`).
        video_a: ``(T, 3, H, W)`` consecutive frames of A (for ``swap_temporal``); None = none.
        video_mask: ``(T, 1, H, W)`` face mask of the frames in [0, 1]; None = whole frame.
        cache: dlib judgements of the fixed images (gallery, sources, baselines), kept here
            so that evaluating at every validation judges them once.
    """

    faces_a: torch.Tensor
    faces_b: torch.Tensor
    gallery: torch.Tensor | None = None
    gallery_labels: torch.Tensor | None = None
    label_a: int = 0
    label_b: int = 1
    b_like_a: torch.Tensor | None = None
    b_valid: torch.Tensor | None = None
    truth_a_as_b: torch.Tensor | None = None
    truth_b_as_a: torch.Tensor | None = None
    factors_a: torch.Tensor | None = None
    factors_b: torch.Tensor | None = None
    factor_names: list[str] | None = None
    video_a: torch.Tensor | None = None
    video_mask: torch.Tensor | None = None
    cache: dict = dataclasses.field(default_factory=dict, repr=False)


def _to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) in [-1, 1] -> (N, H, W, 3) uint8 (the 8-bit quantisation of a saved image)."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected (N, 3, H, W) images in [-1, 1], got {tuple(x.shape)}")
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


class SwapFaceJudge:
    """dlib's detector, 68 landmarks and 128-d descriptor, applied to small face crops.

    Crops are resized (bicubic) to ``upsample_to`` px before detection (the HOG window is
    80 px); the detector retries on a padded image when a tight crop gives nothing (see
    :class:`genface.faces.detect.FaceDetector`). Landmarks come back in the crop's pixels.

    Args:
        upsample_to: side to which crops are resized before detection.
        retry_padding: see :class:`~genface.faces.detect.FaceDetector`; 0 = no retry.
    """

    def __init__(self, upsample_to: int = 256, retry_padding: float = 0.25):
        from genface.faces.detect import FaceDetector, FaceEmbedder

        self.detector = FaceDetector("hog", 68, upsample=0, retry_padding=retry_padding)
        self.embedder = FaceEmbedder()
        self.upsample_to = upsample_to

    def __call__(self, images: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(descriptors (N, 128), landmarks (N, 68, 2))`` with NaN rows where no face is found."""
        from genface.utils import require

        cv2 = require("cv2", "faces")

        ims = _to_uint8_hwc(images)
        desc = np.full((len(ims), 128), np.nan)
        lms = np.full((len(ims), 68, 2), np.nan)
        for i, im in enumerate(ims):
            s = self.upsample_to / im.shape[0]
            big = cv2.resize(im, (self.upsample_to, self.upsample_to), interpolation=cv2.INTER_CUBIC)
            faces = self.detector.detect(big)
            if not faces:
                continue
            desc[i] = self.embedder.embed(big, faces[0])
            lms[i] = faces[0].landmarks / s
        return desc, lms


_JUDGE: dict[tuple, SwapFaceJudge] = {}


def _judge() -> SwapFaceJudge:
    if "default" not in _JUDGE:
        _JUDGE["default"] = SwapFaceJudge()
    return _JUDGE["default"]


def landmark_error(source_landmarks: np.ndarray, other_landmarks: np.ndarray) -> np.ndarray:
    """Per-pair 68-landmark error normalised by the source's inter-ocular distance (NME).

    Args:
        source_landmarks: ``(N, 68, 2)`` landmarks of the source faces (NaN = none found).
        other_landmarks: ``(N, 68, 2)`` landmarks of their swaps (NaN = none found).

    Returns:
        ``(N,)`` mean point distance over the distance between the outer eye corners (points
        36 and 45, iBUG 300-W); NaN where either side has no face.
    """
    s, w = np.asarray(source_landmarks, np.float64), np.asarray(other_landmarks, np.float64)
    if s.shape != w.shape or s.shape[1:] != (68, 2):
        raise ValueError(f"landmarks must both be (N, 68, 2), got {s.shape} and {w.shape}")
    iod = np.linalg.norm(s[:, 36] - s[:, 45], axis=-1)
    return np.linalg.norm(s - w, axis=-1).mean(-1) / iod


def identity_distances(desc: np.ndarray, gallery: np.ndarray, labels: np.ndarray, label: int) -> np.ndarray:
    """Distance of each descriptor to the centre of identity ``label`` in the gallery (NaN rows stay NaN)."""
    g = np.asarray(gallery, np.float64)
    keep = (np.asarray(labels) == label) & np.isfinite(g).all(1)
    if not keep.any():
        return np.full(len(desc), np.nan)
    return np.linalg.norm(np.asarray(desc, np.float64) - g[keep].mean(0), axis=-1)


def temporal_consistency(source: torch.Tensor, swapped: torch.Tensor,
                         mask: torch.Tensor | None = None) -> dict[str, float]:
    """Frame-to-frame change of a swapped video over that of its source.

    Args:
        source: ``(T, C, H, W)`` source frames (any range, the same for both).
        swapped: ``(T, C, H, W)`` the swapped frames.
        mask: ``(T, 1, H, W)`` weights of the swapped region; None = the whole frame.

    Returns:
        ``ratio`` (swap change / source change; 1 = moves as the source, > 1 = flicker),
        ``swap_diff`` and ``source_diff`` (mean absolute difference of consecutive frames).
    """
    if source.shape != swapped.shape or source.ndim != 4 or len(source) < 2:
        raise ValueError(f"need two equal (T>=2, C, H, W) videos, got {tuple(source.shape)} "
                         f"and {tuple(swapped.shape)}")
    x, y = source.float(), swapped.float()
    w = torch.ones_like(x[:, :1]) if mask is None else mask.float()
    w = (w[1:] + w[:-1]) / 2

    def diff(v):
        d = (v[1:] - v[:-1]).abs().mean(1, keepdim=True)
        return float((d * w).sum() / w.sum().clamp_min(1e-8))

    dx, dy = diff(x), diff(y)
    return {"ratio": dy / dx if dx > 0 else float("nan"), "swap_diff": dy, "source_diff": dx}


def _data(ctx: EvalContext) -> SwapEvalSet:
    if not isinstance(ctx.swap_data, SwapEvalSet):
        raise ValueError("swap metrics need swap_data= a genface.metrics.swap.SwapEvalSet "
                         "(SwapDataModule.swap_eval_data())")
    return ctx.swap_data


def _swap(ctx: EvalContext, x: torch.Tensor, target: int) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for s in range(0, len(x), ctx.batch_size):
            y = ctx.swap_fn(x[s:s + ctx.batch_size].to(ctx.device), target)
            out.append(y.detach().float().cpu().clamp(-1, 1))
    y = torch.cat(out)
    if y.shape != x.shape:
        raise ValueError(f"swap_fn returned {tuple(y.shape)} for input {tuple(x.shape)}")
    # 8-bit quantisation, as a saved swap
    return ((y + 1) * 127.5).round() / 127.5 - 1


def _nanmean(v) -> float:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else float("nan")


def _retrieval(desc: np.ndarray, label: int, gallery: np.ndarray, labels: np.ndarray) -> float:
    from genface.metrics.face_embed import identity_retrieval_top1

    return identity_retrieval_top1(desc, gallery, np.full(len(desc), label), labels)


def _gallery(ctx: EvalContext, d: SwapEvalSet) -> tuple[np.ndarray, np.ndarray]:
    if "gallery" not in d.cache:
        desc, _ = _judge()(d.gallery)
        d.cache["gallery"] = (desc, d.gallery_labels.cpu().numpy())
    return d.cache["gallery"]


#: images of a SwapEvalSet that do not change between evaluations (judged once, cached on it)
_FIXED = ("faces_a", "faces_b", "b_like_a")


def _judged(ctx: EvalContext, name: str, images: torch.Tensor):
    store = ctx.swap_data.cache if name in _FIXED else ctx.memo
    key = ("swap_judged", name)
    if key not in store:
        store[key] = _judge()(images)
    return store[key]


def _swap_memo(ctx: EvalContext, name: str, x: torch.Tensor, target: int) -> torch.Tensor:
    key = ("swap_out", name)
    if key not in ctx.memo:
        ctx.memo[key] = _swap(ctx, x, target)
    return ctx.memo[key]


def _swap_id(ctx: EvalContext) -> dict[str, float]:
    d = _data(ctx)
    if d.gallery is None:
        return {"swap_id_dlib": float("nan")}
    g, gl = _gallery(ctx, d)
    a2b = _swap_memo(ctx, "a2b", d.faces_a, 1)
    b2a = _swap_memo(ctx, "b2a", d.faces_b, 0)
    e_swap, _ = _judged(ctx, "a2b", a2b)
    e_b2a, _ = _judged(ctx, "b2a", b2a)
    e_src, _ = _judged(ctx, "faces_a", d.faces_a)
    found = np.isfinite(e_swap).all(1)
    out = {
        "swap_id_dlib": _retrieval(e_swap, d.label_b, g, gl),
        "swap_id_dlib/detected": float(found.mean()),
        "swap_id_dlib/leakage": _nanmean(identity_distances(e_swap, g, gl, d.label_a)),
        "swap_id_dlib/dist_b": _nanmean(identity_distances(e_swap, g, gl, d.label_b)),
        "swap_id_dlib/b2a_top1": _retrieval(e_b2a, d.label_a, g, gl),
        "swap_id_dlib/b2a_detected": float(np.isfinite(e_b2a).all(1).mean()),
        "swap_id_dlib/noswap_top1_b": _retrieval(e_src, d.label_b, g, gl),
        "swap_id_dlib/noswap_detected": float(np.isfinite(e_src).all(1).mean()),
        "swap_id_dlib/noswap_dist_a": _nanmean(identity_distances(e_src, g, gl, d.label_a)),
        "swap_id_dlib/noswap_dist_b": _nanmean(identity_distances(e_src, g, gl, d.label_b)),
        "swap_id_dlib/num_swaps": len(a2b),
        "swap_id_dlib/num_b2a": len(b2a),
        "swap_id_dlib/num_gallery": len(g),
        "swap_id_dlib/num_identities": len(np.unique(gl)),
    }
    if d.b_like_a is not None:
        valid = d.b_valid.cpu().numpy().astype(bool) if d.b_valid is not None else np.ones(len(d.b_like_a), bool)
        if valid.any():
            e_real, _ = _judged(ctx, "b_like_a", d.b_like_a)
            e_real = e_real[valid]
            out.update({
                "swap_id_dlib/real_b_top1": _retrieval(e_real, d.label_b, g, gl),
                "swap_id_dlib/real_b_detected": float(np.isfinite(e_real).all(1).mean()),
                "swap_id_dlib/real_b_leakage": _nanmean(identity_distances(e_real, g, gl, d.label_a)),
                "swap_id_dlib/real_b_dist_b": _nanmean(identity_distances(e_real, g, gl, d.label_b)),
                "swap_id_dlib/real_b_num": int(valid.sum()),
            })
    return out


def _swap_pose(ctx: EvalContext) -> dict[str, float]:
    d = _data(ctx)
    a2b = _swap_memo(ctx, "a2b", d.faces_a, 1)
    _, l_src = _judged(ctx, "faces_a", d.faces_a)
    _, l_swap = _judged(ctx, "a2b", a2b)
    src_ok = np.isfinite(l_src).all((1, 2))
    swap_ok = np.isfinite(l_swap).all((1, 2))
    err = landmark_error(l_src, l_swap)
    out = {
        "swap_pose_dlib": _nanmean(err),
        "swap_pose_dlib/detected": float(swap_ok.mean()),
        "swap_pose_dlib/source_detected": float(src_ok.mean()),
        "swap_pose_dlib/num_pairs": int((src_ok & swap_ok).sum()),
    }
    recon = _swap_memo(ctx, "a2a", d.faces_a, 0)
    _, l_rec = _judged(ctx, "a2a", recon)
    out["swap_pose_dlib/recon"] = _nanmean(landmark_error(l_src, l_rec))
    if d.b_like_a is not None:
        valid = d.b_valid.cpu().numpy().astype(bool) if d.b_valid is not None else np.ones(len(d.b_like_a), bool)
        _, l_real = _judged(ctx, "b_like_a", d.b_like_a)
        e = landmark_error(l_src, l_real)
        e[~valid] = np.nan
        out["swap_pose_dlib/real_b"] = _nanmean(e)
        out["swap_pose_dlib/real_b_pairs"] = int(np.isfinite(e).sum())
    return out


def _swap_temporal(ctx: EvalContext) -> dict[str, float]:
    d = _data(ctx)
    if d.video_a is None:
        return {"swap_temporal": float("nan")}
    y = _swap(ctx, d.video_a, 1)
    t = temporal_consistency(d.video_a, y, d.video_mask)
    return {"swap_temporal": t["ratio"], "swap_temporal/swap_diff": t["swap_diff"],
            "swap_temporal/source_diff": t["source_diff"], "swap_temporal/frames": len(y)}


def _synth_factor_groups(names: list[str]) -> tuple[list[int], list[int]]:
    """Indices of the identity factors and of the expression + pose factors (not lighting,
    background or clothes, which a swap takes from the source anyway)."""
    from genface.data.synthetic import ExpressionPose, IdentityParams

    id_fields = {f.name for f in dataclasses.fields(IdentityParams)}
    attr = ["smile", "mouth_open", "brow_raise", "eye_open", "gaze_x", "gaze_y", "yaw", "roll",
            "offset_x", "offset_y", "scale"]
    known = {f.name for f in dataclasses.fields(ExpressionPose)}
    attr = [a for a in attr if a in known]
    ids = [i for i, n in enumerate(names) if n.split("=")[0] in id_fields]
    att = [names.index(a) for a in attr if a in names]
    return ids, att


def _swap_synth_gt(ctx: EvalContext) -> dict[str, float]:
    from genface.metrics.reconstruction import reconstruction_errors

    d = _data(ctx)
    if d.truth_a_as_b is None:
        return {"swap_synth_gt": float("nan")}
    a2b = _swap_memo(ctx, "a2b", d.faces_a, 1)
    b2a = _swap_memo(ctx, "b2a", d.faces_b, 0)
    sums: dict[str, float] = {}
    for truth, pred in ((d.truth_a_as_b, a2b), (d.truth_b_as_a, b2a)):
        for k, v in reconstruction_errors((truth + 1) / 2, (pred + 1) / 2).items():
            sums[k] = sums.get(k, 0.0) + float(v.mean()) / 2
    out = {"swap_synth_gt": sums["mae"]}
    out.update({f"swap_synth_gt/{k}": v for k, v in sums.items()})
    out["swap_synth_gt/noswap_mae"] = float(
        ((d.truth_a_as_b - d.faces_a).abs().mean() + (d.truth_b_as_a - d.faces_b).abs().mean()) / 4)
    return out


def _factor_net(resolution: int, cache_dir):
    from genface.metrics.synth_net import get_synth_net

    # may train the net on first use: also from inside a validation loop's inference mode
    with torch.inference_mode(False), torch.enable_grad():
        return get_synth_net(resolution, cache_dir)


def _swap_synth(ctx: EvalContext) -> dict[str, float]:
    d = _data(ctx)
    if d.truth_a_as_b is None or d.factors_a is None:
        return {"swap_synth_factors": float("nan")}
    a2b = _swap_memo(ctx, "a2b", d.faces_a, 1)
    b2a = _swap_memo(ctx, "b2a", d.faces_b, 0)
    res = d.faces_a.shape[-1]
    net = _factor_net(res, ctx.cache_dir).to(ctx.device)
    ids, att = _synth_factor_groups(d.factor_names)

    def regress(x):
        with torch.no_grad():
            return torch.cat([net(x[s:s + 256].to(ctx.device))[0].cpu() for s in range(0, len(x), 256)])

    out: dict[str, float] = {}
    fa, fb = d.factors_a.float(), d.factors_b.float()
    pa2b, pb2a = regress(a2b), regress(b2a)
    ptruth = regress(d.truth_a_as_b)
    # the identity classifier: nearest centre of the identity factors the net regresses from
    # the real renders of A and of B (cancels the regressor's bias on these two people)
    id_a, id_b = regress(d.faces_a)[:, ids].mean(0), regress(d.faces_b)[:, ids].mean(0)
    da = (pa2b[:, ids] - id_a).pow(2).sum(1)
    db = (pa2b[:, ids] - id_b).pow(2).sum(1)
    da2 = (pb2a[:, ids] - id_a).pow(2).sum(1)
    db2 = (pb2a[:, ids] - id_b).pow(2).sum(1)
    out["swap_synth_factors"] = float(((db < da).float().mean() + (da2 < db2).float().mean()) / 2)
    out["swap_synth_factors/id_transfer_a2b"] = float((db < da).float().mean())
    out["swap_synth_factors/id_transfer_b2a"] = float((da2 < db2).float().mean())
    out["swap_synth_factors/attr_error"] = float(
        ((pa2b[:, att] - fa[:, att]).abs().mean() + (pb2a[:, att] - fb[:, att]).abs().mean()) / 2)
    out["swap_synth_factors/attr_error_truth"] = float((ptruth[:, att] - fa[:, att]).abs().mean())
    return out


def swap_metric_names(data: SwapEvalSet, dlib: bool | None = None, factor_net: bool | None = True,
                      cache_dir=None) -> list[str]:
    """The swap metrics that apply to ``data`` (and to this install).

    Args:
        data: the held-out faces.
        dlib: whether the dlib metrics can run; None = whether dlib is installed.
        factor_net: include ``swap_synth_factors`` (trains the SyntheticFaces factor net on
            first use, about a minute on a CPU); None = only when that net is cached already.
        cache_dir: the metric cache where that net is looked for (None = the default).
    """
    from genface.metrics.face_embed import dlib_unavailable_reason
    from genface.metrics.synth_net import synth_net_path

    if dlib is None:
        dlib = dlib_unavailable_reason() is None
    names = []
    if dlib and data.gallery is not None:
        names += ["swap_id_dlib", "swap_pose_dlib"]
    if data.video_a is not None:
        names.append("swap_temporal")
    if data.truth_a_as_b is not None:
        names.append("swap_synth_gt")
        if data.factors_a is not None and (
                factor_net or (factor_net is None and synth_net_path(data.faces_a.shape[-1], cache_dir).is_file())):
            names.append("swap_synth_factors")
    return names


_REG: dict[str, tuple[Callable, tuple, str, str]] = {
    "swap_id_dlib": (_swap_id, ("dlib",),
                     "ID retrieval top-1 of swaps A->B among all gallery identities (dlib descriptor; "
                     "swaps without a detected face fail); /detected, /leakage (distance to A), baselines",
                     "Li et al. 2019 FaceShifter; Chen et al. 2020 SimSwap (ID retrieval protocol)"),
    "swap_pose_dlib": (_swap_pose, ("dlib",),
                       "68-landmark error source vs swap over inter-ocular distance (pose + expression kept); "
                       "/real_b: a real photo of B in the same conditions",
                       "Li et al. 2019 FaceShifter (pose/expression error); iBUG 300-W NME"),
    "swap_temporal": (_swap_temporal, (),
                      "frame-to-frame change of swapped frames over the source's (1 = as the source, > 1 = flicker)",
                      "temporal flicker (warping-free variant) as in video face-swap evaluations"),
    "swap_synth_factors": (_swap_synth, (),
                           "SyntheticFaces: identity transfer (regressed identity factors nearer the target than "
                           "the source) and expression/pose factor error (/attr_error) of swaps both ways",
                           "genface SyntheticFaces exact factors"),
    "swap_synth_gt": (_swap_synth_gt, (),
                      "SyntheticFaces: MAE (headline), PSNR, SSIM of swaps both ways against the exact rendered "
                      "swap; /noswap_mae = the unswapped input against it",
                      "genface SyntheticFaces exact ground truth"),
}

for _name, (_fn, _req, _desc, _paper) in _REG.items():
    register_metric(_name, needs=("swapper",), requires=_req, description=_desc, paper=_paper,
                    reference_impl="genface (dlib face_recognition_model_v1 / shape_predictor_68)"
                    if _req else "genface")(_fn)
