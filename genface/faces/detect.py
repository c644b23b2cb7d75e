"""Face detection, landmarks and identity embeddings, offline.

* dlib (``pip install genface[faces]``: ``dlib-bin`` + ``face_recognition_models``, which
  ships the model files): the HOG + linear SVM frontal detector or the MMOD CNN detector;
  the 68-point (iBUG 300-W) or 5-point shape predictor (Kazemi & Sullivan, CVPR 2014); the
  128-d ResNet face descriptor for identity matching (dlib ``face_recognition_model_v1``).
* OpenCV's bundled Haar cascade (Viola & Jones 2001) as the fallback when dlib is missing.
  It gives boxes only: the five template landmarks are then *estimated* from the box
  (``Face.landmarks_estimated``), which makes alignment and masks coarser.

Images are RGB ``uint8`` arrays (H, W, 3) (greyscale (H, W) is accepted).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genface.faces.options import DETECTORS  # re-exported here (one home: faces/options.py)
from genface.utils import require

log = logging.getLogger(__name__)

__all__ = ["Face", "FaceDetector", "FaceEmbedder", "dlib_available", "DETECTORS"]


#: Five template landmarks (eyes, nose tip, mouth corners) as fractions of a Haar box.
_HAAR_BOX_LANDMARKS = np.array(
    [[0.31, 0.40], [0.69, 0.40], [0.50, 0.60], [0.35, 0.78], [0.65, 0.78]], dtype=np.float64)


def dlib_available() -> bool:
    """True when both ``dlib`` and ``face_recognition_models`` are importable."""
    return (importlib.util.find_spec("dlib") is not None
            and importlib.util.find_spec("face_recognition_models") is not None)


def _model_file(name: str) -> str:
    """Path of a dlib model file shipped by ``face_recognition_models``.

    Located without importing the package (its ``__init__`` needs the removed
    ``pkg_resources``).
    """
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("face_recognition_models is not installed: pip install 'genface[faces]'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise FileNotFoundError(f"dlib model file {path} is missing from face_recognition_models")
    return str(path)


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: (x0, y0, x1, y1) in pixels.
        score: detector confidence (HOG/CNN score; 1.0 for Haar).
        landmarks: (N, 2) (x, y) pixel points: 68 or 5 dlib points, or the 5 template points
            estimated from the box (``landmarks_estimated``).
        landmarks_estimated: True when the landmarks were guessed from the box (Haar).
        detector: the back-end that found it ("hog", "cnn" or "haar").
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    landmarks_estimated: bool = False
    detector: str = "hog"

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    def alignment_matrix(self, size: int, padding: float):
        """The source-to-crop similarity for this face, see :func:`genface.faces.align.alignment_matrix`."""
        from genface.faces.align import alignment_matrix

        return alignment_matrix(self.landmarks, size, padding,
                                template_ordered=self.landmarks_estimated)

    def to_dict(self) -> dict:
        return {
            "box": [float(v) for v in self.box],
            "score": float(self.score),
            "landmarks": np.asarray(self.landmarks).round(3).tolist(),
            "landmarks_estimated": bool(self.landmarks_estimated),
            "detector": self.detector,
        }


def _as_rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"images must be uint8, got {image.dtype}")
    if image.ndim == 2:
        return np.ascontiguousarray(np.repeat(image[..., None], 3, -1))
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[..., :3])
    raise ValueError(f"images must be (H, W), (H, W, 3) or (H, W, 4), got {image.shape}")


class FaceDetector:
    """Find faces and their landmarks.

    Args:
        detector: "hog" (dlib HOG, fast on CPU), "cnn" (dlib MMOD CNN, more robust, slow on
            CPU), "hog+cnn" (HOG, then CNN on images where HOG finds nothing), "haar" (OpenCV cascade, box-estimated landmarks) or "auto" (hog when dlib
            is installed, else haar). The choice is logged.
        landmarks: 68 or 5 dlib landmark points (ignored by haar).
        upsample: times dlib upsamples the image before detecting (1 finds faces down to
            ~40 px; 0 = none, faster).
        min_size: smallest face side in pixels for haar.
        retry_padding: when nothing is found, detect again on the image padded on every side
            by this fraction of its larger side with a constant (the image's mean grey), so
            that a face filling a tight crop gets the margin the detectors were trained with;
            landmarks and boxes are mapped back to the original image. 0 = no retry.
        retry_min_side: the padded image is upsampled (bicubic) until its shorter side is at
            least this many pixels (small tight crops: HOG's window is 80 px); 0 = never.
    """

    def __init__(self, detector: str = "auto", landmarks: int = 68, upsample: int = 1,
                 min_size: int = 30, retry_padding: float = 0.25, retry_min_side: int = 0):
        if retry_padding < 0:
            raise ValueError(f"retry_padding must be >= 0, got {retry_padding}")
        if detector not in DETECTORS:
            raise ValueError(f"unknown detector {detector!r}; valid: {list(DETECTORS)}")
        if landmarks not in (5, 68):
            raise ValueError(f"landmarks must be 5 or 68, got {landmarks}")
        if detector == "auto":
            detector = "hog" if dlib_available() else "haar"
            if detector == "haar":
                log.warning("dlib not installed (pip install 'genface[faces]'): using OpenCV's "
                            "Haar cascade; landmarks are estimated from the face box")
        elif detector != "haar" and not dlib_available():
            raise ImportError(f"detector {detector!r} needs dlib and face_recognition_models: "
                              "pip install 'genface[faces]' (or use detector='haar')")
        self.detector = detector
        self.num_landmarks = landmarks
        self.upsample = upsample
        self.min_size = min_size
        self.retry_padding, self.retry_min_side = float(retry_padding), int(retry_min_side)
        if detector == "haar":
            cv2 = require("cv2", "faces")

            path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
            self._haar = cv2.CascadeClassifier(str(path))
            if self._haar.empty():
                raise RuntimeError(f"could not load OpenCV's Haar cascade {path}")
            log.info("face detector: OpenCV Haar cascade (landmarks estimated from the box)")
        else:
            dlib = require("dlib", "faces")

            self._hog = dlib.get_frontal_face_detector() if "hog" in detector else None
            self._cnn = (dlib.cnn_face_detection_model_v1(_model_file("mmod_human_face_detector.dat"))
                         if "cnn" in detector else None)
            name = ("shape_predictor_68_face_landmarks.dat" if landmarks == 68
                    else "shape_predictor_5_face_landmarks.dat")
            self._predictor = dlib.shape_predictor(_model_file(name))
            log.info("face detector: dlib %s with %d-point landmarks", detector.upper(), landmarks)

    def __repr__(self) -> str:
        return f"FaceDetector(detector={self.detector!r}, landmarks={self.num_landmarks})"

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in an RGB uint8 image, largest first."""
        rgb = _as_rgb(image)
        faces = self._detect_once(rgb)
        if not faces and self.retry_padding > 0:
            faces = self._detect_padded(rgb)
        return sorted(faces, key=lambda f: -f.area)

    def _detect_once(self, rgb: np.ndarray) -> list[Face]:
        return self._detect_haar(rgb) if self.detector == "haar" else self._detect_dlib(rgb)

    def _detect_padded(self, rgb: np.ndarray) -> list[Face]:
        """Detect on ``rgb`` padded (constant mean grey) and upsampled; map results back."""
        cv2 = require("cv2", "faces")

        h, w = rgb.shape[:2]
        pad = int(round(self.retry_padding * max(h, w)))
        fill = [int(v) for v in rgb.reshape(-1, 3).mean(0).round()]
        big = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=fill)
        scale = 1.0
        if self.retry_min_side and min(big.shape[:2]) < self.retry_min_side:
            scale = self.retry_min_side / min(big.shape[:2])
            big = cv2.resize(big, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        out = []
        for f in self._detect_once(big):
            box = tuple(float(v / scale - pad) for v in f.box)
            pts = np.asarray(f.landmarks, dtype=np.float64) / scale - pad
            out.append(Face(box, f.score, pts, f.landmarks_estimated, f.detector + "+pad"))
        return out

    __call__ = detect

    def _detect_dlib(self, rgb: np.ndarray) -> list[Face]:
        rects, scores, used = [], [], "hog"
        if self._hog is not None:
            rects, scores, _ = self._hog.run(rgb, self.upsample, 0.0)
        if not len(rects) and self._cnn is not None:
            dets = self._cnn(rgb, self.upsample)
            rects, scores, used = [d.rect for d in dets], [d.confidence for d in dets], "cnn"
        out = []
        for r, s in zip(rects, scores):
            shape = self._predictor(rgb, r)
            pts = np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)
            box = (float(r.left()), float(r.top()), float(r.right()), float(r.bottom()))
            out.append(Face(box, float(s), pts, False, used))
        return out

    def _detect_haar(self, rgb: np.ndarray) -> list[Face]:
        cv2 = require("cv2", "faces")

        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        boxes = self._haar.detectMultiScale(grey, scaleFactor=1.1, minNeighbors=5,
                                            minSize=(self.min_size, self.min_size))
        out = []
        for x, y, w, h in np.asarray(boxes).reshape(-1, 4):
            pts = np.array([x, y]) + _HAAR_BOX_LANDMARKS * np.array([w, h])
            out.append(Face((float(x), float(y), float(x + w), float(y + h)), 1.0, pts, True,
                            "haar"))
        return out


class FaceEmbedder:
    """dlib's 128-d face descriptor (ResNet, LFW 99.38 %); faces match below distance 0.6.

    Args:
        num_jitters: random re-samplings averaged per face (1 = none, faster).
    """

    def __init__(self, num_jitters: int = 1):
        if not dlib_available():
            raise ImportError("identity embeddings need dlib: pip install 'genface[faces]'")
        dlib = require("dlib", "faces")

        self._net = dlib.face_recognition_model_v1(_model_file("dlib_face_recognition_resnet_model_v1.dat"))
        self.num_jitters = num_jitters

    def embed(self, image: np.ndarray, face: Face) -> np.ndarray:
        """The (128,) descriptor of ``face`` in RGB uint8 ``image``."""
        dlib = require("dlib", "faces")

        if face.landmarks_estimated or len(face.landmarks) not in (5, 68):
            raise ValueError("identity embeddings need dlib landmarks (detector 'hog' or 'cnn')")
        x0, y0, x1, y1 = (int(round(v)) for v in face.box)
        shape = dlib.full_object_detection(
            dlib.rectangle(x0, y0, x1, y1), [dlib.point(int(round(x)), int(round(y)))
                                             for x, y in face.landmarks])
        desc = self._net.compute_face_descriptor(_as_rgb(image), shape, self.num_jitters)
        return np.asarray(desc, dtype=np.float64)

    @staticmethod
    def distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Euclidean distance between descriptors (broadcasting); dlib's threshold is 0.6."""
        return np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)
