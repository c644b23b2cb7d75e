"""C2PA content credentials: the signing credential, signing, and reading a manifest back.

C2PA (Coalition for Content Provenance and Authenticity, specification 2.x) defines a signed
manifest embedded in the file (a ``caBX`` chunk in PNG, an APP11 segment in JPEG, a ``uuid``
box in MP4). This module drives the official bindings, ``c2pa-python`` (import name
``c2pa``), and never makes a network call: no timestamp authority, no remote manifest, no
OCSP.

The credential is, in order of preference:

1. the one the user configures (:func:`genface.provenance.configure` ``cert=``/``key=``, or
   ``$GENFACE_C2PA_CERT`` / ``$GENFACE_C2PA_KEY``: a PEM certificate chain, end-entity
   first, and its PEM private key);
2. otherwise a locally generated **test credential**: a self-signed test root CA and an
   end-entity certificate made with ``cryptography`` at first use (ECDSA P-256, ES256) and
   cached under ``$GENFACE_CACHE/provenance/test_credential``. It proves nothing about who
   made a file; it only lets the manifest be signed and its integrity checked. Both
   certificates' organisation reads ``genface TEST credential`` and the verifier says so.
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Organisation name in both certificates of the locally generated test credential.
TEST_ORG = "genface TEST credential (self-signed, not an identity)"

#: MIME types genface signs, by file suffix.
MIME = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".mp4": "video/mp4",
        ".m4v": "video/mp4", ".mov": "video/quicktime"}

#: Settings for every Reader/Builder: nothing is fetched over the network, no thumbnails.
_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False},
            "builder": {"thumbnail": {"enabled": False}}}


def cache_root() -> Path:
    """``$GENFACE_CACHE/provenance``, else ``~/.cache/genface/provenance``."""
    from genface.utils import cache_dir

    return cache_dir("provenance", create=False)


@dataclass(frozen=True)
class Credential:
    """A signing credential.

    Args:
        chain_pem: PEM certificates, end-entity first (the root may be included).
        key_pem: PEM private key of the end-entity certificate.
        alg: C2PA signing algorithm name (``es256``, ``es384``, ``ps256``, ``ed25519``...).
        anchors_pem: PEM root(s) the verifier adds as user trust anchors; "" = none.
        is_test: True for genface's locally generated test credential.
    """

    chain_pem: bytes
    key_pem: bytes
    alg: str = "es256"
    anchors_pem: str = ""
    is_test: bool = False


def _name(cn: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, TEST_ORG)])


def _key_usage(sign: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                         crl_sign=not sign, encipher_only=False, decipher_only=False)


def make_test_credential(days: int = 3650) -> tuple[bytes, bytes, bytes]:
    """Generate a test root CA and an ES256 end-entity certificate C2PA accepts.

    The end-entity certificate has what C2PA's certificate profile asks of a claim signer:
    not a CA, key usage ``digitalSignature``, an extended key usage (``emailProtection``),
    subject and authority key identifiers, and an issuer other than itself.

    Args:
        days: validity of both certificates from yesterday.

    Returns:
        ``(chain_pem, key_pem, root_pem)``: end-entity + root, the end-entity key, the root.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    end = start + datetime.timedelta(days=days)
    ca_key, ee_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("genface TEST root CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(sign=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    ee = (x509.CertificateBuilder().subject_name(_name("genface TEST signer")).issuer_name(ca_name)
          .public_key(ee_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
          .add_extension(_key_usage(sign=True), critical=True)
          .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ee_key.public_key()), critical=False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    root_pem = ca.public_bytes(pem)
    key_pem = ee_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ee.public_bytes(pem) + root_pem, key_pem, root_pem


def test_credential(folder: Path | None = None) -> Credential:
    """The cached test credential, generated at first use (atomically: concurrent processes agree).

    Args:
        folder: where it is kept; ``None`` = ``cache_root()/test_credential``.
    """
    folder = Path(folder) if folder is not None else cache_root() / "test_credential"
    files = [folder / n for n in ("chain.pem", "key.pem", "root.pem")]
    if not all(f.is_file() for f in files):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".test_credential."))
        for f, data in zip(files, make_test_credential()):
            (tmp / f.name).write_bytes(data)
        (tmp / "key.pem").chmod(0o600)
        (tmp / "README.txt").write_text(
            "genface's locally generated C2PA TEST credential. It identifies no one: anything "
            "signed with it shows only that the file is unchanged since genface wrote it.\n")
        try:
            os.rename(tmp, folder)  # atomic; fails if another process got there first
        except OSError:
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    chain, key, root = (f.read_bytes() for f in files)
    return Credential(chain, key, "es256", root.decode(), is_test=True)


def test_root_pem() -> str:
    """PEM of the cached test root ("" when none was generated yet); verification trusts it
    as a *user* anchor, and the report says the signer is a test credential."""
    p = cache_root() / "test_credential" / "root.pem"
    return p.read_text() if p.is_file() else ""


def _context(anchors: str = ""):
    import c2pa

    cfg: dict[str, Any] = json.loads(json.dumps(_OFFLINE))
    if anchors:
        cfg["trust"] = {"user_anchors": anchors}
    return c2pa.Context.from_dict(cfg)


def _signer(cred: Credential):
    import c2pa

    return c2pa.Signer.from_info(c2pa.C2paSignerInfo(cred.alg, cred.chain_pem, cred.key_pem, None))


def sign(data: bytes, mime: str, manifest: dict, cred: Credential, ingredient: Path | None = None) -> bytes:
    """Return ``data`` (a whole PNG/JPEG/MP4 file) with a signed C2PA manifest embedded.

    Args:
        data: the file's bytes.
        mime: its MIME type (see :data:`MIME`).
        manifest: the manifest definition (see :func:`genface.provenance.manifest_for`).
        cred: the signing credential.
        ingredient: a source file recorded as the ``parentOf`` ingredient labelled ``source``
            (the real video a face swap edited); ``None`` = none.
    """
    import io

    import c2pa

    with c2pa.Builder(manifest, context=_context(cred.anchors_pem)) as builder:
        if ingredient is not None:
            with open(ingredient, "rb") as f:
                builder.add_ingredient({"title": Path(ingredient).name, "relationship": "parentOf", "label": "source"},
                                       MIME[Path(ingredient).suffix.lower()], f)
        src, dst = io.BytesIO(data), io.BytesIO()
        with _signer(cred) as signer:
            builder.sign(signer, mime, src, dst)
    return dst.getvalue()


def read(path: str | Path, anchors: str = "") -> dict | None:
    """The manifest store of ``path`` with its validation results, or ``None`` when it has none.

    Args:
        path: the file.
        anchors: PEM roots to trust besides the SDK's (``trust.user_anchors``).

    Returns:
        ``{"state": "Trusted" | "Valid" | "Invalid", "results": {...}, "active": {...}}``.
    """
    import c2pa

    path = Path(path)
    mime = MIME.get(path.suffix.lower())
    with open(path, "rb") as f:
        reader = c2pa.Reader.try_create(mime or "", f, None, _context(anchors))
        if reader is None:
            return None
        with reader:
            return {"state": reader.get_validation_state(), "results": reader.get_validation_results() or {},
                    "active": reader.get_active_manifest() or {}}
