"""Reading and writing images and videos for the faces pipeline (PIL + PyAV).

Unreadable inputs raise :class:`MediaError` naming the file. Video writers mark what they
write through :mod:`genface.provenance`: the invisible watermark in every frame, a signed
C2PA manifest in the finished file, and container metadata (``comment=synthetic``,
``synthetic=true``...).
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from genface.utils import require

__all__ = [
    "MediaError",
    "IMAGE_EXTS",
    "VIDEO_EXTS",
    "is_video",
    "list_images",
    "read_image",
    "VideoReader",
    "VideoWriter",
]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pbm", ".tif", ".tiff", ".webp")
#: Video containers and the codec written into each.
VIDEO_EXTS = {".mp4": "libx264", ".mov": "libx264", ".mkv": "libx264", ".m4v": "libx264",
              ".avi": "mpeg4"}


class MediaError(ValueError):
    """An input image or video could not be read (or an output could not be written)."""


def is_video(path: str | Path) -> bool:
    """True when ``path``'s suffix is a video container (or ``.webm``)."""
    return Path(path).suffix.lower() in (*VIDEO_EXTS, ".webm")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder`` or below it, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MediaError(f"{folder} is not a folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3); :class:`MediaError` names unreadable files."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")).copy()
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise MediaError(f"cannot read image {path}: {e}") from e


class VideoReader:
    """Iterate over a video's frames as RGB uint8 arrays (PyAV).

    Args:
        path: the video file.

    Attributes:
        fps: frame rate as a :class:`fractions.Fraction`.
        num_frames: frame count from the container (None when the container does not say).
        width, height: frame size.
    """

    def __init__(self, path: str | Path):
        av = require("av", "video")

        self.path = Path(path)
        if not self.path.is_file():
            raise MediaError(f"cannot read video {self.path}: no such file")
        try:
            self._container = av.open(str(self.path))
            if not self._container.streams.video:
                raise MediaError(f"cannot read video {self.path}: it has no video stream")
        except MediaError:
            raise
        except Exception as e:  # av.error.* subclasses, InvalidDataError...
            raise MediaError(f"cannot read video {self.path}: {e}") from e
        self._stream = self._container.streams.video[0]
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        if not rate:
            raise MediaError(f"cannot read video {self.path}: no frame rate")
        self.fps = Fraction(rate)
        self.num_frames = int(self._stream.frames) or None
        self.width = self._stream.codec_context.width
        self.height = self._stream.codec_context.height

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            for frame in self._container.decode(self._stream):
                yield frame.to_ndarray(format="rgb24")
        except Exception as e:
            raise MediaError(f"error decoding video {self.path}: {e}") from e

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoWriter:
    """Write RGB uint8 frames to a video marked synthetic (watermark, C2PA manifest, metadata).

    Args:
        path: output file; its suffix picks the container (one of :data:`VIDEO_EXTS`).
        fps: frame rate (a Fraction keeps e.g. 30000/1001 exact).
        crf: x264 constant rate factor (lower = better; 18 is visually lossless); ignored by
            mpeg4.
        metadata: container metadata; None = :func:`genface.provenance.video_metadata`.
        origin: what made the frames (:func:`genface.provenance.origin`), for the watermark
            payload and the C2PA manifest signed on :meth:`close`; None = an unnamed model.
    """

    def __init__(self, path: str | Path, fps: Fraction | float, crf: int = 18,
                 metadata: dict[str, str] | None = None, origin=None):
        av = require("av", "video")

        from genface import provenance

        self.path = Path(path)
        ext = self.path.suffix.lower()
        if ext not in VIDEO_EXTS:
            raise MediaError(f"cannot write {self.path}: video outputs must end in one of "
                             f"{sorted(VIDEO_EXTS)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.codec = VIDEO_EXTS[ext]
        self.fps = Fraction(fps).limit_denominator(1001 * 1000)
        self.crf = crf
        opts = {"movflags": "use_metadata_tags"} if ext in (".mp4", ".mov", ".m4v") else {}
        self._container = av.open(str(self.path), "w", options=opts)
        self.origin = origin or provenance.Origin()
        self._unmarked = ""  # why frames carry no watermark, if so
        meta = dict(metadata) if metadata is not None else provenance.video_metadata(self.origin)
        for k, v in meta.items():
            self._container.metadata[k] = str(v)
        self._stream = None
        self.frames = 0

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 (H, W, 3) frame; every frame must share the first one's size."""
        av = require("av", "video")

        rgb = np.ascontiguousarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"frames must be uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        if self._stream is None:
            s = self._container.add_stream(self.codec, rate=self.fps)
            s.width, s.height = w, h
            # 4:2:0 needs even sizes; x264's 4:4:4 keeps odd-sized frames as they are.
            s.pix_fmt = "yuv420p" if (w % 2 == 0 and h % 2 == 0) or self.codec != "libx264" else "yuv444p"
            if self.codec == "libx264":
                s.options = {"crf": str(self.crf)}
            self._stream = s
        elif (w, h) != (self._stream.width, self._stream.height):
            raise ValueError(f"frame {self.frames} is {w}x{h}, the video is "
                             f"{self._stream.width}x{self._stream.height}")
        from genface import provenance

        rgb, self._unmarked = provenance.watermark_frame(rgb, self.origin)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        if self.frames:
            from genface import provenance

            provenance.sign_file(self.path, self.origin, marked=not self._unmarked, note=self._unmarked)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
