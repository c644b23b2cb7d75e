"""The option values of the faces pipeline, in one light module (standard library only).

The CLIs (``genface-extract``, ``genface-swap``) build their ``--help`` from these without
importing torch, NumPy, dlib or OpenCV; :mod:`genface.faces.align`, ``detect``, ``extract``
and ``convert`` import them from here.
"""

#: Default padding of the template on each side (fraction of the tight ArcFace crop).
DEFAULT_PADDING = 0.15

#: Detector back-ends accepted by :class:`~genface.faces.detect.FaceDetector`.
DETECTORS = ("auto", "hog", "cnn", "hog+cnn", "haar")

#: Faces kept per frame by :func:`~genface.faces.extract.extract_faces`.
SELECT_MODES = ("largest", "all", "match")

#: Masks and colour corrections of :class:`~genface.faces.convert.FaceSwapper`.
MASKS = ("hull", "learned", "ellipse")
COLORS = ("none", "avg", "reinhard")
