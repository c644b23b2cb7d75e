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

from genface.faces.align import DEFAULT_PADDING, invert_affine, transform_points, warp_to_crop
from genface.faces.detect import Face, FaceDetector, FaceEmbedder
from genface.faces.io import MediaError, VideoReader, is_video, list_images, read_image

log = logging.getLogger(__name__)

__all__ = ["extract_faces", "iter_frames", "select_faces", "SELECT_MODES", "ALIGNMENTS_NAME"]

SELECT_MODES = ("largest", "all", "match")
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


def extract_faces(
    source: str | Path,
    output_dir: str | Path,
    size: int = 256,
    padding: float = DEFAULT_PADDING,
    detector: FaceDetector | str = "auto",
    landmarks: int = 68,
    select: str = "largest",
    reference: str | Path | None = None,
    threshold: float = 0.6,
    every: int = 1,
    max_frames: int | None = None,
    progress: bool = False,
) -> dict:
    """Detect, align and save every selected face of ``source``.

    Args:
        source: an image, a folder of images or a video.
        output_dir: where ``faces/`` and ``alignments.json`` go (created).
        size: side of the aligned crops in pixels.
        padding: template padding, see :func:`genface.faces.align.template_points`.
        detector: a :class:`FaceDetector` or a back-end name ("auto", "hog", "cnn", "haar").
        landmarks: 68 or 5 dlib points when ``detector`` is a name.
        select: "largest", "all" or "match" (see :func:`select_faces`).
        reference: image of the person to keep when ``select='match'``.
        threshold: identity distance threshold for "match".
        every: keep one frame/image in ``every``.
        max_frames: stop after this many frames; None = all.
        progress: show a progress bar.

    Returns:
        the summary also stored in ``alignments.json`` (without the per-face list):
        frames, frames_with_face, faces, hit_rate, ...
    """
    if select not in SELECT_MODES:
        raise ValueError(f"unknown face selection {select!r}; valid: {list(SELECT_MODES)}")
    det = detector if isinstance(detector, FaceDetector) else FaceDetector(detector, landmarks)
    embedder = ref = None
    if select == "match":
        if reference is None:
            raise ValueError("select='match' needs a reference image")
        embedder = FaceEmbedder()
        ref = reference_descriptor(reference, det, embedder)
    out = Path(output_dir)
    (out / "faces").mkdir(parents=True, exist_ok=True)
    frames, total = iter_frames(source, every, max_frames)
    records, missed, n_frames = [], [], 0
    from PIL import Image

    for name, idx, image in _progress(frames, total, "extracting", progress):
        n_frames += 1
        faces = det.detect(image)
        chosen = select_faces(faces, select, image, embedder, ref, threshold)
        if not chosen:
            missed.append({"source": name, "frame": idx})
            continue
        stem = Path(name).with_suffix("").as_posix().replace("/", "_")
        for k, (face, dist) in enumerate(chosen):
            m = face.alignment_matrix(size, padding)
            crop = warp_to_crop(image, m, size)
            fname = f"faces/{stem}_{idx:06d}_{k}.png"
            Image.fromarray(crop).save(out / fname)
            rec = {"file": fname, "source": name, "frame": idx, "face": k, **face.to_dict(),
                   "crop_landmarks": transform_points(face.landmarks, m).round(3).tolist(),
                   "matrix": m.tolist(), "inverse": invert_affine(m).tolist()}
            if dist is not None:
                rec["identity_distance"] = dist
            records.append(rec)
    if n_frames == 0:
        raise MediaError(f"no frames could be read from {source}")
    summary = {
        "source": str(source), "size": size, "padding": padding, "detector": det.detector,
        "landmarks": det.num_landmarks, "landmarks_estimated": det.detector == "haar",
        "select": select, "frames": n_frames, "frames_with_face": n_frames - len(missed),
        "faces": len(records), "hit_rate": (n_frames - len(missed)) / n_frames,
    }
    doc = {**summary, "matrix_convention": "source pixels -> crop pixels (cv2.warpAffine)",
           "frames_without_face": missed, "faces_list": records}
    tmp = out / (ALIGNMENTS_NAME + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.replace(out / ALIGNMENTS_NAME)
    if missed:
        log.warning("%d of %d frames had no face (%s)", len(missed), n_frames, source)
    return summary
