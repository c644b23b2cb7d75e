"""Reading a file's marks back: the C2PA manifest, the watermark and the plain metadata.

:func:`verify` returns a :class:`Report`; :meth:`Report.text` is what
``genface-provenance verify FILE`` prints.

Manifest status:

* ``valid``: the manifest's signature and every hash it holds match the file. Said
  ``(trusted)`` when the signing certificate chains to a trust anchor: the SDK's list, the
  roots in ``$GENFACE_C2PA_TRUST``, or this machine's genface test root (which proves
  nothing about who signed, and the report says so);
* ``tampered``: a hash in the manifest no longer matches the file (its pixels, frames or the
  manifest were changed after signing);
* ``untrusted``: signature and hashes match, but the signer chains to none of those
  anchors (the validator reports ``signingCredential.untrusted``);
* ``invalid``: the manifest is there but fails for another reason (a bad signature or
  certificate);
* ``absent``: the file has no manifest (never signed, or re-encoded, which drops it);
* ``unavailable``: ``c2pa-python`` is not installed, so the manifest was not read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genface.provenance import watermark

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm")


@dataclass
class Report:
    """What :func:`verify` found.

    Attributes:
        path: the file.
        manifest: ``valid``, ``untrusted``, ``tampered``, ``invalid``, ``absent`` or ``unavailable``.
        trusted: the signer chains to a trust anchor (see the module docstring).
        failures: the validator's failure codes and explanations.
        signer: common name, issuer, algorithm of the signing certificate.
        test_credential: the signer is a genface test credential.
        claim_generator: name and version from the manifest.
        assertions: the manifest's assertions (label -> data).
        watermark: the :class:`~genface.provenance.watermark.Detection` as a dict.
        metadata: plain metadata (PNG text, JPEG comment, container tags).
    """

    path: str
    manifest: str = "absent"
    trusted: bool = False
    failures: list[str] = field(default_factory=list)
    signer: dict[str, Any] = field(default_factory=dict)
    test_credential: bool = False
    claim_generator: str = ""
    assertions: dict[str, Any] = field(default_factory=dict)
    watermark: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)

    def text(self) -> str:
        """Human-readable summary."""
        lines = [f"file: {self.path}"]
        status = self.manifest
        if self.manifest == "valid" and self.trusted:
            status += " (trusted only through this machine's genface TEST root)" if self.test_credential else " (trusted)"
        elif self.manifest == "valid":
            status += " (signature and hashes match; signer not on any trust list)"
        lines.append(f"C2PA manifest: {status}")
        lines += [f"  ! {f}" for f in self.failures]
        if self.signer:
            lines.append(f"  signer: {self.signer.get('common_name', '?')} (issuer: {self.signer.get('issuer', '?')}, "
                         f"{self.signer.get('alg', '?')})")
        if self.test_credential:
            lines.append("  NOTE: signed with genface's locally generated TEST credential: it shows the file is "
                         "unchanged since genface wrote it, not who made it")
        if self.claim_generator:
            lines.append(f"  claim generator: {self.claim_generator}")
        for label, data in self.assertions.items():
            if label.startswith("c2pa.actions"):
                for a in data.get("actions", []):
                    src = a.get("digitalSourceType", "").rsplit("/", 1)[-1]
                    lines.append(f"  {label}: {a.get('action')}" + (f", digitalSourceType {src}" if src else "")
                                 + (f", \"{a['description']}\"" if a.get("description") else "")
                                 + (" (the source file, as ingredient)" if a.get("action") == "c2pa.opened" else ""))
            elif label == "org.genface.provenance":
                wm = data.get("watermark", {})
                lines.append(f"  {label}: model {data.get('model_class', 'unknown')}, weights sha256 "
                             f"{data.get('weights_sha256', 'unknown')}" + (f", source {data['source']}" if data.get("source") else ""))
                lines.append(f"    watermark recorded: {wm.get('method')} embedded={wm.get('embedded')} "
                             f"payload {wm.get('payload_hex')}" + (f" ({wm['note']})" if wm.get("note") else ""))
            else:
                lines.append(f"  {label}")
        w = self.watermark
        if not w.get("bits"):
            lines.append(f"watermark ({watermark.METHOD}): not decodable: {w.get('note')}")
        else:
            head = "found" if w.get("found") else "not found"
            lines.append(f"watermark ({watermark.METHOD}, {watermark.PAYLOAD_BITS} bits): {head}; magic "
                         f"{w.get('magic_correct')}/{watermark.MAGIC_BITS} bits correct (threshold "
                         f"{watermark.MAGIC_MIN_CORRECT}); model hash bits {w.get('model_hash16')}")
            lines.append(f"  bits: {w.get('bits')}")
            if w.get("note"):
                lines.append(f"  note: {w['note']}")
            if w.get("bit_accuracy") is not None:
                lines.append(f"  bit accuracy vs the manifest's payload: {w['bit_accuracy']:.3f}")
            if w.get("frames", 1) > 1:
                accs = w.get("frame_accuracies") or []
                per = f"; per-frame bit accuracy mean {sum(accs) / len(accs):.3f}, min {min(accs):.3f}" if accs else ""
                lines.append(f"  frames decoded: {w['frames']}, marked on their own: {w['frames_found']}{per}")
        if self.metadata:
            keys = ("synthetic", "generator", "genface_action", "model_class", "comment")
            shown = {k: self.metadata[k] for k in keys if k in self.metadata}
            lines.append("plain metadata: " + (", ".join(f"{k}={v}" for k, v in shown.items()) or
                                               f"{len(self.metadata)} fields, no genface mark"))
        else:
            lines.append("plain metadata: none")
        return "\n".join(lines)


def _manifest(report: Report, path: Path) -> str | None:
    """Fill the manifest fields; return the weights hash it records (for the watermark check)."""
    from genface import provenance

    if not provenance.c2pa_available():
        report.manifest = "unavailable"
        return None
    from genface.provenance import credentials

    anchors = credentials.test_root_pem()
    s = provenance.settings()
    if s.trust:
        anchors += Path(s.trust).read_text()
    try:
        store = credentials.read(path, anchors)
    except Exception as e:  # c2pa raises on a manifest it cannot parse at all
        report.manifest, report.failures = "invalid", [f"{type(e).__name__}: {e}"]
        return None
    if store is None:
        return None
    results = (store["results"] or {}).get("activeManifest", {})
    fails = results.get("failure", [])
    report.failures = [f"{f.get('code')}: {f.get('explanation', '')}" for f in fails]
    codes = [f.get("code", "") for f in fails]
    if not fails and store["state"] in ("Valid", "Trusted"):
        report.manifest = "valid"
    elif any("mismatch" in c or "Mismatch" in c for c in codes):
        report.manifest = "tampered"
    elif all(c == "signingCredential.untrusted" for c in codes):
        report.manifest = "untrusted"
    else:
        report.manifest = "invalid"
    report.trusted = store["state"] == "Trusted"
    active = store["active"]
    report.signer = active.get("signature_info", {})
    report.test_credential = credentials.TEST_ORG in str(report.signer.get("issuer", ""))
    gen = (active.get("claim_generator_info") or [{}])[0]
    report.claim_generator = f"{gen.get('name', '')} {gen.get('version', '')}".strip()
    report.assertions = {a["label"]: a.get("data", {}) for a in active.get("assertions", [])}
    return report.assertions.get(provenance.ASSERTION, {}).get("weights_sha256")


def _metadata(path: Path) -> dict[str, str]:
    if path.suffix.lower() in VIDEO_SUFFIXES:
        import av

        with av.open(str(path)) as c:
            return {k: str(v) for k, v in c.metadata.items()}
    from PIL import Image

    with Image.open(path) as im:
        meta = {k: str(v) for k, v in getattr(im, "text", {}).items()}
        comment = im.info.get("comment")
        if comment:
            text = comment.decode(errors="replace") if isinstance(comment, bytes) else str(comment)
            meta["comment"] = text
            for part in text.split("; "):
                k, _, v = part.partition("=")
                if k and v:
                    meta.setdefault(k, v)
    return meta


def verify(path: str | Path, max_frames: int = 60) -> Report:
    """Check a PNG, JPEG or video: C2PA manifest, invisible watermark, plain metadata.

    Args:
        path: the file.
        max_frames: video frames decoded for the watermark (the first ones).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    from genface import provenance

    report = Report(str(path))
    expected = _manifest(report, path)
    if not provenance.watermark_available():
        det = watermark.Detection(False, note="invisible-watermark is not installed")
    elif path.suffix.lower() in VIDEO_SUFFIXES:
        from genface.faces.io import VideoReader

        with VideoReader(path) as reader:
            det = watermark.detect_frames(iter(reader), expected, max_frames=max_frames)
    else:
        from genface.faces.io import read_image

        det = watermark.detect(read_image(path), expected)
    report.watermark = asdict(det)
    report.metadata = _metadata(path)
    return report
