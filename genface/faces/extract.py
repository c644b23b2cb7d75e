"""Extract aligned face crops from an image folder, an image or a video.

Writes ``<out>/faces/*.png`` (the aligned crops; real faces, so not marked synthetic) and
``<out>/alignments.json`` holding, per face, its source, frame, box, landmarks (source and
crop pixels) and the source-to-crop matrix with its inverse, so that any crop can be put
back where it came from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from genface.faces.align import (
    DEFAULT_PADDING,
    crop_valid_fraction,
    fitting_padding,
    invert_affine,
    transform_points,
    warp_to_crop,
)
from genface.faces.detect import Face, FaceDetector, FaceEmbedder
from genface.faces.io import IMAGE_EXTS, MediaError, VideoReader, is_video, list_images, read_image
from genface.faces.options import SELECT_MODES  # re-exported here (one home: faces/options.py)

log = logging.getLogger(__name__)

__all__ = ["extract_faces", "iter_frames", "select_faces", "skipped_files", "SELECT_MODES", "ALIGNMENTS_NAME"]

ALIGNMENTS_NAME = "alignments.json"


def iter_frames(source: str | Path, every: int = 1,
                max_frames: int | None = None) -> tuple[Iterator[tuple[str, int, np.ndarray]], int | None]:
    """Frames of an image, an image folder or a video, as ``(source_name, index, rgb)``.

    Args:
        source: an image file, a folder of images (searched recursively) or a video.
        every: keep one frame in ``every`` (videos) / image in ``every`` (folders).
        max_frames: stop after this many kept frames; None = all.

    Returns:
        ``(iterator, total)`` where total is the number of frames to expect (None if unknown).
    """
    source = Path(source)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    if source.is_dir():
        files = list_images(source)[::every][:max_frames]
        if not files:
            raise MediaError(f"no images found in {source}")

        def gen_images():
            for i, f in enumerate(files):
                yield str(f.relative_to(source)), i, read_image(f)

        return gen_images(), len(files)
    if not source.exists():
        raise MediaError(f"cannot read {source}: no such file or folder")
    if is_video(source):
        reader = VideoReader(source)
        total = None if reader.num_frames is None else -(-reader.num_frames // every)
        if total is not None and max_frames is not None:
            total = min(total, max_frames)

        def gen_video():
            kept = 0
            with reader:
                for i, frame in enumerate(reader):
                    if i % every:
                        continue
                    if max_frames is not None and kept >= max_frames:
                        break
                    kept += 1
                    yield source.name, i, frame

        return gen_video(), total
    return iter([(source.name, 0, read_image(source))]), 1


def select_faces(faces: list[Face], mode: str, image: np.ndarray | None = None,
                 embedder: FaceEmbedder | None = None, reference: np.ndarray | None = None,
                 threshold: float = 0.6) -> list[tuple[Face, float | None]]:
    """Keep the faces to extract, with their identity distance (None unless ``mode='match'``).

    Args:
        faces: detections, largest first.
        mode: "largest" (one per frame), "all", or "match" (the face nearest ``reference``
            if closer than ``threshold``).
        image: the frame (needed for "match").
        embedder: identity embedder (needed for "match").
        reference: (128,) descriptor of the reference face (needed for "match").
        threshold: largest descriptor distance that counts as the same person (dlib: 0.6).
    """
    if mode not in SELECT_MODES:
        raise ValueError(f"unknown face selection {mode!r}; valid: {list(SELECT_MODES)}")
    if not faces:
        return []
    if mode == "largest":
        return [(faces[0], None)]
    if mode == "all":
        return [(f, None) for f in faces]
    if embedder is None or reference is None or image is None:
        raise ValueError("select mode 'match' needs image, embedder and reference")
    dists = [float(embedder.distance(embedder.embed(image, f), reference)) for f in faces]
    best = int(np.argmin(dists))
    return [(faces[best], dists[best])] if dists[best] < threshold else []


def reference_descriptor(path: str | Path, detector: FaceDetector, embedder: FaceEmbedder) -> np.ndarray:
    """Descriptor of the largest face in the reference image ``path``."""
    image = read_image(path)
    faces = detector.detect(image)
    if not faces:
        raise MediaError(f"no face found in the reference image {path}")
    return embedder.embed(image, faces[0])


def _progress(it: Iterable, total: int | None, description: str, enabled: bool):
    if not enabled:
        return it
    from rich.progress import track

    return track(it, total=total, description=description, transient=True)


def skipped_files(source: str | Path) -> list[Path]:
    """Files under a folder ``source`` that are not images and are skipped (e.g. Extended
    Yale B's ``.info`` and ``WS_FTP.LOG``); hidden files are not counted. [] for a file."""
    source = Path(source)
    if not source.is_dir():
        return []
    return sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_EXTS
                  and not any(part.startswith(".") for part in p.relative_to(source).parts))


def extract_faces(
    source: str | Path,
    output_dir: str | Path,
    size: int = 256,
    padding: float | str = DEFAULT_PADDING,
    detector: FaceDetector | str = "auto",
    landmarks: int = 68,
    select: str = "largest",
    reference: str | Path | None = None,
    threshold: float = 0.6,
    every: int = 1,
    max_frames: int | None = None,
    progress: bool = False,
    fill: str = "mean",
) -> dict:
    """Detect, align and save every selected face of ``source``.

    Args:
        source: an image, a folder of images or a video.
        output_dir: where ``faces/`` and ``alignments.json`` go (created).
        size: side of the aligned crops in pixels.
        padding: template padding, see :func:`genface.faces.align.template_points`; "auto"
            chooses it from the faces' size: per face the largest padding up to
            :data:`~genface.faces.align.DEFAULT_PADDING` whose crop stays inside its source
            (:func:`~genface.faces.align.fitting_padding`), then one value for the whole
            run, the 10th percentile of those, so that all crops share one framing and at
            least 90 % of them show no pixel from outside the source. Tightly cropped sets
            (Extended Yale B) then give crops of face, not of replicated borders.
        detector: a :class:`FaceDetector` or a back-end name ("auto", "hog", "cnn", "haar").
        landmarks: 68 or 5 dlib points when ``detector`` is a name.
        select: "largest", "all" or "match" (see :func:`select_faces`).
        reference: image of the person to keep when ``select='match'``.
        threshold: identity distance threshold for "match".
        every: keep one frame/image in ``every``.
        max_frames: stop after this many frames; None = all.
        progress: show a progress bar.
        fill: crop pixels outside the source: "mean" = the source's mean colour (a flat,
            featureless margin), "replicate" = its border pixels (streaks; the old default).

    Returns:
        the summary also stored in ``alignments.json`` (without the per-face list):
        frames, frames_with_face, faces, hit_rate, padding, mean_valid_fraction (share of
        crop pixels inside their source), skipped_files (non-image files left out), ...
    """
    if select not in SELECT_MODES:
        raise ValueError(f"unknown face selection {select!r}; valid: {list(SELECT_MODES)}")
    if fill not in ("mean", "replicate"):
        raise ValueError(f"fill must be 'mean' or 'replicate', got {fill!r}")
    if isinstance(padding, str) and padding != "auto":
        raise ValueError(f"padding must be a number or 'auto', got {padding!r}")
    det = detector if isinstance(detector, FaceDetector) else FaceDetector(detector, landmarks)
    embedder = ref = None
    if select == "match":
        if reference is None:
            raise ValueError("select='match' needs a reference image")
        embedder = FaceEmbedder()
        ref = reference_descriptor(reference, det, embedder)
    out = Path(output_dir)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    skipped = skipped_files(source)
    if skipped:
        log.warning("skipped %d non-image file(s) under %s (e.g. %s)", len(skipped), source,
                    ", ".join(p.name for p in skipped[:3]))
    frames, total = iter_frames(source, every, max_frames)
    # pass 1: detect (and, with padding="auto", measure how much margin each source allows)
    found, missed, n_frames, fits = [], [], 0, []
    for name, idx, image in _progress(frames, total, "detecting", progress):
        n_frames += 1
        chosen = select_faces(det.detect(image), select, image, embedder, ref, threshold)
        if not chosen:
            missed.append({"source": name, "frame": idx})
            continue
        found.append((name, idx, chosen))
        if padding == "auto":
            fits += [fitting_padding(f.landmarks, image.shape, template_ordered=f.landmarks_estimated)
                     for f, _ in chosen]
    if n_frames == 0:
        raise MediaError(f"no frames could be read from {source}")
    pad = float(np.percentile(fits, 10)) if padding == "auto" and fits else (
        DEFAULT_PADDING if padding == "auto" else float(padding))
    # pass 2: cut the crops
    from PIL import Image

    wanted = {(name, idx): chosen for name, idx, chosen in found}
    records, grey_sources = [], 0
    frames, _ = iter_frames(source, every, max_frames)
    for name, idx, image in frames:
        chosen = wanted.get((name, idx))
        if chosen is None:
            continue
        grey = bool((image[..., 0] == image[..., 1]).all() and (image[..., 1] == image[..., 2]).all())
        grey_sources += grey
        value = None if fill == "replicate" else tuple(float(v) for v in image.reshape(-1, 3).mean(0))
        stem = Path(name).with_suffix("").as_posix().replace("/", "_")
        for k, (face, dist) in enumerate(chosen):
            m = face.alignment_matrix(size, pad)
            crop = warp_to_crop(image, m, size, fill=value)
            fname = f"faces/{stem}_{idx:06d}_{k}.png"
            # greyscale sources stay greyscale (one channel) in the written crops
            Image.fromarray(crop[..., 0] if grey else crop).save(out / fname)
            rec = {"file": fname, "source": name, "frame": idx, "face": k, **face.to_dict(),
                   "crop_landmarks": transform_points(face.landmarks, m).round(3).tolist(),
                   "matrix": m.tolist(), "inverse": invert_affine(m).tolist(),
                   "valid_fraction": round(crop_valid_fraction(image.shape, m, size), 4)}
            if dist is not None:
                rec["identity_distance"] = dist
            records.append(rec)
    summary = {
        "source": str(source), "size": size, "padding": pad, "padding_mode": "auto" if padding == "auto" else "fixed",
        "fill": fill, "detector": det.detector,
        "landmarks": det.num_landmarks, "landmarks_estimated": det.detector == "haar",
        "select": select, "frames": n_frames, "frames_with_face": n_frames - len(missed),
        "faces": len(records), "hit_rate": (n_frames - len(missed)) / n_frames,
        "found_on_retry": sum(r["detector"].endswith("+pad") for r in records),
        "mean_valid_fraction": float(np.mean([r["valid_fraction"] for r in records])) if records else float("nan"),
        "greyscale_sources": grey_sources,
        "skipped_files": len(skipped),
    }
    doc = {**summary, "matrix_convention": "source pixels -> crop pixels (cv2.warpAffine)",
           "frames_without_face": missed, "skipped_file_names": [str(p) for p in skipped],
           "faces_list": records}
    tmp = out / (ALIGNMENTS_NAME + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out / ALIGNMENTS_NAME)
    if missed:
        log.warning("%d of %d frames had no face (%s)", len(missed), n_frames, source)
    return summary
