"""Detached Ed25519 signatures over a bundle's manifest (`manifest.json.sig`).

The manifest pins every file of the bundle by sha256, so one signature over its exact bytes
covers the whole bundle: an edited file fails its hash, an edited manifest (hashes rewritten
included) fails the signature. Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public)
made by the `cryptography` package; the kit trusts the public keys in `/etc/mpox-screen/keys/`.
"""

from __future__ import annotations

import os
from pathlib import Path

from device import DeviceError

SIGNATURE = "manifest.json.sig"
KEYS_DIR = Path("/etc/mpox-screen/keys")
MAX_SIGNATURE_BYTES = 64  # an Ed25519 signature is exactly 64 bytes
DEFAULT_KEY = Path("mpox-screen-release.key")


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise DeviceError(
            "signatures need the cryptography package (pip install cryptography)"
        ) from None
    return ed25519, serialization, InvalidSignature


def keygen(private: Path = DEFAULT_KEY) -> Path:
    """Write a new key pair: PRIVATE (0600) and PRIVATE with .pub; neither may exist (a key is
    never overwritten), and a half-made pair is removed."""
    ed25519, ser, _ = _crypto()
    if private.suffix == ".pub":
        raise DeviceError(f"{private}: name the private key (KEY makes KEY and KEY.pub)")
    public = private.with_suffix(".pub")
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption())
    pub = key.public_key().public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    written = []
    try:
        for path, data, mode in ((private, pem, 0o600), (public, pub, 0o644)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
            written.append(path)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
    except OSError as e:
        for path in written:
            path.unlink(missing_ok=True)
        why = "it exists: not overwriting a key" if isinstance(e, FileExistsError) else e.strerror
        raise DeviceError(f"{e.filename}: {why}") from None
    return public


def _read_key(path: Path, private: bool):
    ed25519, ser, _ = _crypto()
    try:
        data = path.read_bytes()
        key = (
            ser.load_pem_private_key(data, password=None)
            if private
            else ser.load_pem_public_key(data)
        )
    except (OSError, ValueError, TypeError) as e:
        raise DeviceError(f"{path}: not a readable key ({e})") from None
    want = ed25519.Ed25519PrivateKey if private else ed25519.Ed25519PublicKey
    if not isinstance(key, want):
        raise DeviceError(f"{path}: not an Ed25519 key")
    return key


def sign(bundle: Path, private_key: Path) -> Path:
    key = _read_key(private_key, private=True)
    out = bundle / SIGNATURE
    out.write_bytes(key.sign((bundle / "manifest.json").read_bytes()))
    return out


def trusted_keys(keys_dir: Path) -> dict[str, object]:
    """Every `*.pub` in the folder, by file name; none is an empty trust list, not an error."""
    if not keys_dir.is_dir():
        return {}
    return {p.name: _read_key(p, private=False) for p in sorted(keys_dir.glob("*.pub"))}


def signed_by(bundle: Path, keys_dir: Path) -> str | None:
    """The trusted key that signed the bundle's manifest, or None when it is not signed at all.
    A signature that no trusted key verifies is an error, not "unsigned"."""
    sig = bundle / SIGNATURE
    if not sig.is_file():
        return None
    _, _, invalid = _crypto()
    with sig.open("rb") as f:
        signature = f.read(MAX_SIGNATURE_BYTES + 1)
    if len(signature) != MAX_SIGNATURE_BYTES:
        raise DeviceError(f"bundle {bundle}: {SIGNATURE} is not an Ed25519 signature (64 bytes)")
    manifest = (bundle / "manifest.json").read_bytes()
    for name, key in trusted_keys(keys_dir).items():
        try:
            key.verify(signature, manifest)
            return name
        except invalid:
            continue
    raise DeviceError(
        f"bundle {bundle}: its signature is not from a trusted key (in {keys_dir}) "
        "or the manifest was changed after signing"
    )
