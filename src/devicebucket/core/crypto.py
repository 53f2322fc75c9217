"""Encryption at rest: bucket contents sealed with AES-256-GCM, bound to their device and job.

A stored value is ``dbk1:<key id>:<base64url(nonce + ciphertext)>``. The associated data is
the device and job, so a ciphertext copied to another bucket fails to open. Keys are 32
random bytes, written as base64url (``devicebucket key generate``). A :class:`KeyRing` seals
with its first key and opens with any of its keys: during a rotation it holds the new key
first and the old one after it, so reads keep working while rows move to the new key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import SettingError, StoreUnavailableError

__all__ = [
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KEY_FILE_SHARED_ENV",
    "EncryptionError",
    "KeyRing",
    "generate_key",
    "key_check",
    "open_plain",
    "verify_key",
]

KEY_ENV: Final = "DEVICEBUCKET_ENCRYPTION_KEY"
KEY_FILE_ENV: Final = "DEVICEBUCKET_KEY_FILE"
KEY_FILE_SHARED_ENV: Final = "DEVICEBUCKET_KEY_FILE_SHARED"
PREFIX: Final = "dbk1:"  # sealed for a device and job (before version 2)
PREFIX2: Final = "dbk2:"  # sealed for a device, job and version
_NONCE: Final = 12


class EncryptionError(StoreUnavailableError):
    """A value cannot be opened (wrong key, moved ciphertext) or no key was given."""


class KeySettingError(EncryptionError, SettingError):
    """The key given (its text, its file) cannot be used."""


def generate_key() -> str:
    """A new key, as the text a key file holds."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(text: str, source: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise KeySettingError(
            f"the encryption key from {source} is not 32 bytes of base64url"
            " (make one with `devicebucket key generate`)"
        )
    return raw


def _aad(device: str, job: str, version: int | None = None) -> bytes:
    bound = f"{device}\x1f{job}"
    return (bound if version is None else f"{bound}\x1f{version}").encode()


class KeyRing:
    """Keys to seal (the first) and open (any) bucket contents."""

    def __init__(self, keys: Iterable[bytes], source: str = "the key given") -> None:
        self.source = source  # where the keys came from, for messages
        self._keys = [(hashlib.sha256(k).hexdigest()[:8], AESGCM(k)) for k in keys]
        if not self._keys:
            raise ValueError("a key ring needs at least one key")
        self._by_id = dict(self._keys)

    @classmethod
    def from_texts(cls, texts: Iterable[str], source: str) -> KeyRing:
        return cls((_decode_key(t, source) for t in texts), source)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KeyRing | None:
        """``DEVICEBUCKET_ENCRYPTION_KEY`` (comma-separated: new key first during a rotation)
        or the file named by ``DEVICEBUCKET_KEY_FILE``; None if neither is set."""
        env = os.environ if environ is None else environ
        if env.get(KEY_ENV):
            return cls.from_texts(env[KEY_ENV].split(","), f"${KEY_ENV}")
        if env.get(KEY_FILE_ENV):
            return cls.from_file(Path(env[KEY_FILE_ENV]), env)
        return None

    @classmethod
    def from_file(cls, path: Path, environ: Mapping[str, str] | None = None) -> KeyRing:
        """The keys in a key file, one a line. A file that others may read is refused, as
        ssh refuses such a private key, unless ``DEVICEBUCKET_KEY_FILE_SHARED=1``."""
        env = os.environ if environ is None else environ
        try:
            mode = path.stat().st_mode
            if mode & 0o077 and env.get(KEY_FILE_SHARED_ENV) != "1":
                raise KeySettingError(
                    f"key file {path} may be read by others (mode {mode & 0o777:o}): make it"
                    f" private (chmod 600), or set {KEY_FILE_SHARED_ENV}=1 to use it anyway"
                )
            lines = [line for line in path.read_text().splitlines() if line.strip()]
        except OSError as exc:
            raise KeySettingError(f"cannot read key file {path}: {exc.strerror}") from None
        return cls.from_texts(lines, f"key file {path}")

    @property
    def key_id(self) -> str:
        """The id of the sealing key (a hash prefix: it names a key, never reveals it)."""
        return self._keys[0][0]

    def with_old(self, old: KeyRing) -> KeyRing:
        """This ring's keys first, then ``old``'s (for a rotation)."""
        ring = KeyRing.__new__(KeyRing)
        ring.source = f"{self.source} and {old.source}"
        ring._keys = self._keys + [k for k in old._keys if k[0] not in self._by_id]
        ring._by_id = dict(ring._keys)
        return ring

    def seal(self, device: str, job: str, text: str, version: int | None = None) -> str:
        """Seal ``text`` for a device and job and, given one, the bucket's version: a value
        opens only where and as what it was written, so an old copy put back is noticed."""
        aead = self._keys[0][1]
        nonce = secrets.token_bytes(_NONCE)
        sealed = aead.encrypt(nonce, text.encode(), _aad(device, job, version))
        scheme = PREFIX if version is None else PREFIX2
        return f"{scheme}{self.key_id}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, device: str, job: str, stored: str, version: int | None = None) -> str:
        if stored.startswith(PREFIX2):
            bound_version, rest = version, stored[len(PREFIX2) :]
            if version is None:
                raise EncryptionError("a value sealed with its version is opened without one")
        elif stored.startswith(PREFIX):
            bound_version, rest = None, stored[len(PREFIX) :]  # sealed before versions were bound
        else:
            return stored  # written before encryption was turned on
        key_id, _, body = rest.partition(":")
        aead = self._by_id.get(key_id)
        if aead is None:
            raise EncryptionError(
                f"a value in bucket {device!r}{f' (job {job!r})' if job else ''} is sealed"
                f" with key {key_id}, which is not among the configured keys"
            )
        raw = base64.urlsafe_b64decode(body.encode())
        try:
            aad = _aad(device, job, bound_version)
            return aead.decrypt(raw[:_NONCE], raw[_NONCE:], aad).decode()
        except InvalidTag:
            where = f"{device!r}{f' (job {job!r})' if job else ''}"
            raise EncryptionError(
                f"a value in bucket {where} does not decrypt as version {version}: it was"
                " sealed for another device, job or version (an older copy put back), or it"
                " was altered"
            ) from None

    @property
    def prefix(self) -> str:
        """How every bucket value sealed with the first key, and its version, begins (a key
        rotation re-seals every stored value that does not)."""
        return f"{PREFIX2}{self.key_id}:"


def open_plain(device: str, job: str, stored: str) -> str:
    """Reading without a key: plaintext passes, a sealed value is a clear error."""
    if stored.startswith((PREFIX, PREFIX2)):
        raise EncryptionError(
            "this store is encrypted: give its key (DEVICEBUCKET_ENCRYPTION_KEY,"
            " DEVICEBUCKET_KEY_FILE or --key-file)"
        )
    return stored


_KEY_CHECK: Final = ("devicebucket", "key check")


def key_check(keys: KeyRing) -> str:
    """What a store keeps to recognise its key: a known text sealed with it."""
    return keys.seal(*_KEY_CHECK, _KEY_CHECK[1])


def verify_key(keys: KeyRing | None, stored_check: str | None, where: str) -> str | None:
    """Compare the configured key with a store's key check; return a new check to store
    when encryption is being turned on (else None). Raises EncryptionError on a mismatch."""
    if stored_check is None:
        return None if keys is None else key_check(keys)
    if keys is None:
        raise EncryptionError(
            f"{where} is encrypted: give its key (DEVICEBUCKET_ENCRYPTION_KEY,"
            " DEVICEBUCKET_KEY_FILE or --key-file)"
        )
    try:
        if keys.open(*_KEY_CHECK, stored_check) == _KEY_CHECK[1]:
            return None
    except EncryptionError:
        pass
    raise EncryptionError(f"the encryption key from {keys.source} does not match {where}")
