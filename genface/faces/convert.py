"""Convert (swap) faces in images and videos with a trained :class:`~genface.models.faceswap.FaceSwap`.

Per frame, as faceswap's convert: detect -> align (Umeyama to the template) -> swap into the
target identity -> mask (landmark hull eroded and blurred, or the learned mask) -> colour
correction (average colour, or Reinhard mean/std transfer in L*a*b*) -> warp back with the
inverse alignment -> blend. Frames with no face pass through unchanged and are counted.

Everything written is marked through :mod:`genface.provenance`: a signed C2PA manifest
(``c2pa.edited``, ``compositeWithTrainedAlgorithmicMedia``, the source as parent
ingredient), the invisible watermark in every image and frame, PNG text chunks or video
container metadata, and a sidecar JSON next to each video.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from genface.faces.align import DEFAULT_PADDING, transform_points, warp_from_crop, warp_to_crop
from genface.faces.detect import FaceDetector
from genface.faces.io import MediaError, VideoReader, VideoWriter, is_video, list_images, read_image
from genface.faces.masks import face_mask, soften_mask
from genface.faces.options import COLORS, MASKS  # re-exported here (one home: faces/options.py)
from genface.utils import require

log = logging.getLogger(__name__)

__all__ = ["FaceSwapper", "SwapReport", "swap_file", "swap_video", "swap_images",
           "color_transfer", "MASKS", "COLORS"]



def color_transfer(src: np.ndarray, ref: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    """Match the colour of ``src`` to ``ref`` inside ``mask``.

    Args:
        src: swapped face (S, S, 3) float32 RGB in [0, 1].
        ref: original face crop, same shape.
        mask: (S, S) weights in [0, 1] of the pixels whose statistics count.
        mode: "none"; "avg" (shift by the difference of mean colours); "reinhard" (per
            channel mean and std transfer in L*a*b*, Reinhard et al. 2001).
    """
    cv2 = require("cv2", "faces")

    if mode not in COLORS:
        raise ValueError(f"unknown colour correction {mode!r}; valid: {list(COLORS)}")
    if mode == "none":
        return src
    w = mask[..., None].astype(np.float32)
    wsum = max(float(w.sum()), 1e-6)

    def stats(x):
        mu = (x * w).sum((0, 1)) / wsum
        sd = np.sqrt(((x - mu) ** 2 * w).sum((0, 1)) / wsum)
        return mu, sd

    if mode == "avg":
        return np.clip(src + stats(ref)[0] - stats(src)[0], 0, 1)
    s_lab = cv2.cvtColor(src.astype(np.float32), cv2.COLOR_RGB2LAB)
    r_lab = cv2.cvtColor(ref.astype(np.float32), cv2.COLOR_RGB2LAB)
    mu_s, sd_s = stats(s_lab)
    mu_r, sd_r = stats(r_lab)
    out = (s_lab - mu_s) * (sd_r / np.maximum(sd_s, 1e-3)) + mu_r
    return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB), 0, 1)


@dataclass
class SwapReport:
    """What a swap run did."""

    input: str
    output: str
    frames: int = 0  # frames (or images) processed
    frames_with_face: int = 0
    frames_without_face: int = 0  # passed through unchanged
    faces_swapped: int = 0
    fps: float | None = None  # videos only
    identity: int = 0
    model: str | None = None
    settings: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        msg = (f"{self.input} -> {self.output}: {self.frames} frame(s), {self.faces_swapped} "
               f"face(s) swapped into identity {self.identity}")
        if self.frames_without_face:
            msg += (f"; {self.frames_without_face} frame(s) had no face and were passed through "
                    "unchanged")
        if self.frames and self.frames_without_face == self.frames:
            msg += " -- NO face was found in any frame: check the input or try detector='cnn'"
        return msg


class FaceSwapper:
    """Swaps every (or the largest) face of a frame into one identity of a FaceSwap model.

    Args:
        model: a trained :class:`~genface.models.faceswap.FaceSwap`.
        identity: index of the decoder to swap into (e.g. 1 = B).
        detector: a :class:`FaceDetector` or a back-end name ("auto", "hog", "cnn", "haar").
        padding: template padding the model's training crops were extracted with
            (:func:`genface.faces.extract.extract_faces`'s ``padding``).
        mask: "hull" (68-point landmark hull; the template ellipse with 5-point or estimated
            landmarks), "learned" (the model's mask head) or "ellipse".
        color: colour correction, one of :data:`COLORS`.
        erode: mask erosion as a fraction of the crop (see :func:`soften_mask`).
        blur: mask blur as a fraction of the crop.
        faces: "all" faces of a frame or only the "largest".
        device: torch device for the model.
    """

    def __init__(self, model, identity: int, detector: FaceDetector | str = "auto",
                 padding: float = DEFAULT_PADDING, mask: str = "hull", color: str = "reinhard",
                 erode: float = 0.05, blur: float = 0.08, faces: str = "all",
                 device: str | torch.device = "cpu"):
        if mask not in MASKS:
            raise ValueError(f"unknown mask {mask!r}; valid: {list(MASKS)}")
        if color not in COLORS:
            raise ValueError(f"unknown colour correction {color!r}; valid: {list(COLORS)}")
        if faces not in ("all", "largest"):
            raise ValueError(f"faces must be 'all' or 'largest', got {faces!r}")
        if not 0 <= identity < model.config.num_identities:
            raise ValueError(f"identity {identity} out of range: the model has "
                             f"{model.config.num_identities} identities (0..{model.config.num_identities - 1})")
        if mask == "learned" and not model.config.learn_mask:
            raise ValueError("mask='learned' needs a model trained with learn_mask=True; "
                             "use mask='hull'")
        self.model = model.to(device).eval()
        self.identity = identity
        self.detector = detector if isinstance(detector, FaceDetector) else FaceDetector(detector)
        self.padding, self.mask, self.color = padding, mask, color
        self.erode, self.blur, self.faces = erode, blur, faces
        self.device = torch.device(device)
        self.resolution = model.config.resolution

    def settings(self) -> dict:
        return {"detector": self.detector.detector, "padding": self.padding, "mask": self.mask,
                "color": self.color, "erode": self.erode, "blur": self.blur, "faces": self.faces}

    @torch.no_grad()
    def swap_frame(self, frame: np.ndarray) -> tuple[np.ndarray, int]:
        """Swap the faces of one RGB uint8 frame; returns ``(new_frame, faces_swapped)``.

        A frame with no face comes back unchanged (the same array).
        """
        cv2 = require("cv2", "faces")

        faces = self.detector.detect(frame)
        if self.faces == "largest":
            faces = faces[:1]
        if not faces:
            return frame, 0
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, -1)
        grey = bool((frame[..., 0] == frame[..., 1]).all() and (frame[..., 1] == frame[..., 2]).all())
        out = frame.astype(np.float32) / 255.0
        r = self.resolution
        for face in faces:
            # Work at the face's own scale (at least the model's) so the blend stays sharp.
            x0, y0, x1, y1 = face.box
            size = int(max(r, min(1024, 2 * round(max(x1 - x0, y1 - y0)))))
            m = face.alignment_matrix(size, self.padding)
            crop = warp_to_crop(frame, m, size)
            small = cv2.resize(crop, (r, r), interpolation=cv2.INTER_AREA) if size != r else crop
            x = torch.from_numpy(small).to(self.device).permute(2, 0, 1)[None].float() / 255.0
            rgb, learned = self.model.swap(x, to=self.identity, return_mask=True)
            swapped = rgb[0].permute(1, 2, 0).float().cpu().numpy()
            if size != r:
                swapped = cv2.resize(swapped, (size, size), interpolation=cv2.INTER_CUBIC)
            if self.mask == "learned":
                mk = learned[0, 0].float().cpu().numpy()
                mk = cv2.resize(mk, (size, size), interpolation=cv2.INTER_LINEAR) if size != r else mk
                mk = soften_mask(mk, 0.0, self.blur)
            else:
                lm = (transform_points(face.landmarks, m)
                      if self.mask == "hull" and not face.landmarks_estimated else None)
                mk = face_mask(lm, size, self.padding, self.erode, self.blur)
            swapped = color_transfer(np.clip(swapped, 0, 1), crop.astype(np.float32) / 255.0,
                                     mk, self.color)
            back = warp_from_crop(swapped.astype(np.float32), m, frame.shape[:2])
            alpha = warp_from_crop(mk.astype(np.float32), m, frame.shape[:2])[..., None]
            out = out * (1 - alpha) + back * alpha
        if grey:  # a greyscale source stays greyscale (no tint from the model or the colour transfer)
            out = np.repeat(out.mean(-1, keepdims=True), 3, -1)
        return np.clip(out * 255.0 + 0.5, 0, 255).astype(np.uint8), len(faces)


def _progress(total: int | None, enabled: bool):
    from rich.progress import Progress

    return Progress(transient=True, disable=not enabled), total


def swap_video(swapper: FaceSwapper, source: str | Path, output: str | Path,
               progress: bool = False, model_name: str | None = None) -> SwapReport:
    """Swap every frame of a video; same frame count and frame rate; marked synthetic.

    Args:
        swapper: the configured :class:`FaceSwapper`.
        source: input video.
        output: output video (suffix picks the container, see :data:`genface.faces.io.VIDEO_EXTS`).
        progress: show a progress bar.
        model_name: recorded in the metadata and sidecar (e.g. the model folder).

    Writes ``<output>.json`` beside the video (provenance + this report).
    """
    from genface import provenance

    source, output = Path(source), Path(output)
    if source.resolve() == output.resolve():
        raise ValueError(f"output {output} would overwrite the input")
    report = SwapReport(str(source), str(output), identity=swapper.identity, model=model_name,
                        settings=swapper.settings())
    reader = VideoReader(source)
    report.fps = float(reader.fps)
    desc = f"face swapped by genface into identity {swapper.identity}"
    org = provenance.origin(swapper.model, "swapped", desc, source=source)
    bar, total = _progress(reader.num_frames, progress)
    with reader, VideoWriter(output, reader.fps, metadata=provenance.video_metadata(org, desc), origin=org) as writer, bar:
        task = bar.add_task(f"swapping {source.name}", total=total)
        for frame in reader:
            new, n = swapper.swap_frame(frame)
            writer.write(new)
            report.frames += 1
            report.faces_swapped += n
            report.frames_with_face += n > 0
            report.frames_without_face += n == 0
            bar.advance(task)
    _write_sidecar(output, report)
    _log_report(report)
    return report


def swap_images(swapper: FaceSwapper, sources: list[Path], output_dir: str | Path,
                progress: bool = False, model_name: str | None = None,
                root: Path | None = None) -> SwapReport:
    """Swap images, each written as a marked PNG into ``output_dir`` (same relative names).

    Args:
        swapper: the configured :class:`FaceSwapper`.
        sources: image files.
        output_dir: output folder (created); also gets ``swap_report.json``.
        progress: show a progress bar.
        model_name: recorded in PNG metadata and the report.
        root: folder the sources are relative to (their sub-folders are kept); None = flat.
    """
    from genface import provenance

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    report = SwapReport(str(root or (sources[0] if len(sources) == 1 else "")), str(out),
                        identity=swapper.identity, model=model_name, settings=swapper.settings())
    org = provenance.origin(swapper.model, "swapped", f"face swapped by genface into identity {swapper.identity}")
    bar, _ = _progress(len(sources), progress)
    with bar:
        task = bar.add_task("swapping images", total=len(sources))
        for src in sources:
            new, n = swapper.swap_frame(read_image(src))
            rel = src.relative_to(root) if root is not None else Path(src.name)
            provenance.save_image(new, (out / rel).with_suffix(".png"), replace(org, source=str(src)),
                                  extra={"genface_task": "face swap", "identity": swapper.identity,
                                         "model": model_name or "", "faces_swapped": n})
            report.frames += 1
            report.faces_swapped += n
            report.frames_with_face += n > 0
            report.frames_without_face += n == 0
            bar.advance(task)
    _write_sidecar(out / "swap_report", report)
    _log_report(report)
    return report


def swap_file(swapper: FaceSwapper, source: str | Path, output: str | Path,
              progress: bool = False, model_name: str | None = None) -> SwapReport:
    """Swap a video, an image or a folder of images (dispatch on ``source``).

    A video goes to the video file ``output``; a folder to the folder ``output``; a single
    image to ``output`` if it ends in ``.png``, else into the folder ``output``.
    """
    source, output = Path(source), Path(output)
    if source.is_dir():
        return swap_images(swapper, list_images(source), output, progress, model_name, root=source)
    if not source.exists():
        raise MediaError(f"cannot read {source}: no such file or folder")
    if is_video(source):
        return swap_video(swapper, source, output, progress, model_name)
    if output.suffix.lower() == ".png":
        report = swap_images(swapper, [source], output.parent, progress, model_name)
        produced = output.parent / (source.stem + ".png")
        if produced != output:
            produced.replace(output)
        report.output = str(output)
        return report
    return swap_images(swapper, [source], output, progress, model_name)


def _write_sidecar(output: Path, report: SwapReport) -> None:
    from genface.provenance import PROVENANCE

    doc = {**PROVENANCE, "report": asdict(report), "message": report.message}
    output.with_name(output.name + ".json").write_text(json.dumps(doc, indent=2))


def _log_report(report: SwapReport) -> None:
    if report.frames_without_face:
        log.warning(report.message)
    else:
        log.info(report.message)
