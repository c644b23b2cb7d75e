"""The invisible watermark: a 40-bit payload in the frequency domain of every image and frame.

Method: ``invisible-watermark``'s DWT-DCT-SVD (``dwtDctSvd``; the package's DWT-DCT family,
the same package Stable Diffusion's reference scripts use). The U (chroma) channel's Haar
DWT LL band is cut into 4x4 blocks; block ``k`` carries payload bit ``k mod 40`` by
quantising the largest singular value of the block's DCT (step :data:`SCALE`). A picture of H x W
pixels has ``(H // 8) * (W // 8)`` blocks, so each bit is repeated that many / 40 times and
the decoder takes a majority vote.

Why not the plain ``dwtDct`` method? Measured on UTKFace faces (``experiments/watermark_robustness.py``,
``docs/provenance.md``), its bit accuracy is about 0.7-0.8 on the *unmodified* marked image
and about 0.55 after JPEG q90: zero bits often decode as one, because lowering a block's
largest coefficient can make another coefficient the largest. ``dwtDctSvd`` decodes 1.0
clean, and most of the bits after JPEG q75, at 64 px and up.

The package refuses pictures under 256 x 256 pixels in its ``WatermarkEncoder``; genface
calls the method's class (``EmbedDwtDctSvd``) directly so that 64 and 128 px samples are
marked too, down to :data:`MIN_BLOCKS` blocks (56 x 56 px: every bit at least once). What it
measured at each size is in the docs; smaller pictures are written unmarked and say so in
their manifest.

Payload (40 bits): the 24-bit magic :data:`MAGIC` (genface, payload version 1) then the
first 16 bits of the SHA-256 of the model's weights (0 when unknown). A picture counts as
marked when at least :data:`MAGIC_MIN_CORRECT` of the 24 magic bits decode correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: "gf" + payload version 1: identifies a genface watermark.
MAGIC = b"gf\x01"
MAGIC_BITS = 8 * len(MAGIC)
HASH_BITS = 16
PAYLOAD_BITS = MAGIC_BITS + HASH_BITS
#: Decision threshold: 22 of 24 magic bits (<= 2 errors). For random bits the chance is
#: (1 + 24 + 276) / 2**24 = 1.8e-5 per decode attempt; the measured rate is in the docs.
MAGIC_MIN_CORRECT = 22
#: Watermark strength: quantisation step of the singular value. The package's default is
#: 36; 48 costs about 1.7 dB PSNR (39 -> 37 dB at 128 px, chroma only) and, measured on 30
#: faces at 128 px, lifts detection after JPEG q75 from 50 % to 100 % (docs/provenance.md).
SCALE = 48
#: Fewest 4x4 LL blocks a picture must have to carry every bit once (56 x 56 px).
MIN_BLOCKS = PAYLOAD_BITS
METHOD = "dwtDctSvd"


def payload_bits(model_hash: str | None) -> np.ndarray:
    """The 40 payload bits for a model whose weights' SHA-256 hex digest is ``model_hash``."""
    h = int(model_hash[:4], 16) if model_hash else 0
    data = MAGIC + h.to_bytes(2, "big")
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.int64)


def num_blocks(height: int, width: int) -> int:
    """Blocks available in an H x W picture (its LL band in 4x4 blocks)."""
    return ((height // 4 * 4) // 2 // 4) * ((width // 4 * 4) // 2 // 4)


def can_mark(height: int, width: int) -> bool:
    """True when an H x W picture is large enough to carry the whole payload."""
    return num_blocks(height, width) >= MIN_BLOCKS


def _embedder(bits=()):
    from imwatermark.dwtDctSvd import EmbedDwtDctSvd

    return EmbedDwtDctSvd(list(bits), wmLen=PAYLOAD_BITS, scales=[0, SCALE, 0], block=4)


def embed(rgb: np.ndarray, model_hash: str | None) -> np.ndarray:
    """Return a watermarked copy of an RGB uint8 (H, W, 3) picture.

    Raises :class:`ValueError` when the picture is too small (see :func:`can_mark`).
    """
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if not can_mark(*rgb.shape[:2]):
        raise ValueError(f"{rgb.shape[1]}x{rgb.shape[0]} is too small to carry a {PAYLOAD_BITS}-bit "
                         f"watermark (needs {MIN_BLOCKS} blocks, about 56x56 px)")
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    out = _embedder(payload_bits(model_hash)).encode(bgr)
    return np.ascontiguousarray(out[..., ::-1])


def scores(rgb: np.ndarray) -> np.ndarray:
    """Per-bit vote in [0, 1] (share of a bit's blocks that read 1); NaN for bits with no block."""
    import cv2
    import pywt

    h, w = rgb.shape[:2]
    yuv = cv2.cvtColor(np.ascontiguousarray(rgb[..., ::-1]), cv2.COLOR_BGR2YUV)
    ll, _ = pywt.dwt2(yuv[: h // 4 * 4, : w // 4 * 4, 1], "haar")
    votes = _embedder().decode_frame(ll, SCALE, [[] for _ in range(PAYLOAD_BITS)])
    return np.array([np.mean(v) if v else np.nan for v in votes])


@dataclass
class Detection:
    """What the decoder read.

    Attributes:
        found: at least :data:`MAGIC_MIN_CORRECT` magic bits correct.
        bits: the 40 decoded bits as a "0"/"1" string.
        magic_correct: how many of the 24 magic bits are correct.
        model_hash16: the decoded 16-bit model-hash prefix (4 hex digits).
        bit_accuracy: share of all 40 bits equal to ``expected`` (None without one).
        frames: pictures decoded (1 for an image; the frames read for a video).
        frames_found: how many of them were marked on their own.
        frame_accuracies: per-frame bit accuracy against ``expected`` (videos).
        note: why decoding was not possible, if so.
    """

    found: bool
    bits: str = ""
    magic_correct: int = 0
    model_hash16: str = ""
    bit_accuracy: float | None = None
    frames: int = 1
    frames_found: int = 0
    frame_accuracies: list[float] = field(default_factory=list)
    note: str = ""


def _decide(s: np.ndarray, expected: np.ndarray | None) -> Detection:
    bits = (np.nan_to_num(s, nan=0.0) > 0.5).astype(np.int64)
    magic = payload_bits(None)[:MAGIC_BITS]
    correct = int((bits[:MAGIC_BITS] == magic).sum())
    h16 = int("".join(map(str, bits[MAGIC_BITS:])), 2)
    acc = float((bits == expected).mean()) if expected is not None else None
    return Detection(correct >= MAGIC_MIN_CORRECT, "".join(map(str, bits)), correct, f"{h16:04x}", acc,
                     frames_found=int(correct >= MAGIC_MIN_CORRECT))


#: Scale factors :func:`detect` retries when the picture as given is not marked: 2 undoes
#: a 0.5x resize (a thumbnail). Each retry is one more chance of a false detection; the
#: measured false-positive rate (docs/provenance.md) includes them.
RETRY_SCALES = (2.0,)


def detect(rgb: np.ndarray, expected_hash: str | None = None, retry_scales=RETRY_SCALES) -> Detection:
    """Decode the watermark of an RGB uint8 picture.

    Args:
        rgb: the picture (H, W, 3) uint8.
        expected_hash: the model's weights hash when known (from the C2PA manifest); it
            gives :attr:`Detection.bit_accuracy` over all 40 bits.
        retry_scales: when not found as given, decode again after resizing by each factor
            (bicubic), first hit wins; () = no retry.
    """
    expected = payload_bits(expected_hash) if expected_hash is not None else None
    h, w = rgb.shape[:2]
    det = (_decide(scores(rgb), expected) if can_mark(h, w)
           else Detection(False, note=f"{w}x{h} is too small to carry the watermark"))
    for f in () if det.found else retry_scales:
        import cv2

        big = cv2.resize(rgb, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
        if can_mark(*big.shape[:2]):
            again = _decide(scores(big), expected)
            if again.found:
                again.note = f"found after a {f:g}x rescale (the file was resized)"
                return again
    return det


def detect_frames(frames, expected_hash: str | None = None, max_frames: int = 60) -> Detection:
    """Decode a video: votes are pooled over up to ``max_frames`` frames (first frames first).

    Per-frame results go to :attr:`Detection.frames_found` and :attr:`Detection.frame_accuracies`.
    """
    expected = payload_bits(expected_hash) if expected_hash is not None else None
    pooled, n, found, accs = np.zeros(PAYLOAD_BITS), 0, 0, []
    for rgb in frames:
        if n >= max_frames:
            break
        if not can_mark(*rgb.shape[:2]):
            return Detection(False, note=f"{rgb.shape[1]}x{rgb.shape[0]} frames are too small to carry the watermark")
        s = scores(rgb)
        one = _decide(s, expected)
        found += one.found
        if one.bit_accuracy is not None:
            accs.append(one.bit_accuracy)
        pooled += np.nan_to_num(s, nan=0.5)
        n += 1
    if n == 0:
        return Detection(False, frames=0, note="no frames")
    det = _decide(pooled / n, expected)
    det.frames, det.frames_found, det.frame_accuracies = n, found, accs
    return det
