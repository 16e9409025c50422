"""Persistence of the embedded issuer in its folder (`<data_dir>/identity`, mode 0700; files 0600):

- `accounts.json`  accounts with argon2id hashes, rewritten atomically under an exclusive lock (the CLI
                   and the issuer share it);
- `keys/<kid>.pem` EC P-256 signing keys;
- `admin.json`, `clients/<service>.json`  the local credentials supervisionctl and the services present.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.identity.domain.accounts import Account
from services.identity.domain.keys import KeyInfo


def private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only, atomically."""
    private_dir(path.parent)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


class AccountStore:
    def __init__(self, folder: Path) -> None:
        self.path = folder / "accounts.json"
        self.lock_path = folder / "accounts.lock"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        private_dir(self.path.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, Account]:
        if not self.path.exists():
            return {}
        rows = json.loads(self.path.read_text(encoding="utf-8"))
        return {r["name"]: Account(**r) for r in rows}

    def all(self) -> list[Account]:
        return sorted(self._read().values(), key=lambda a: a.name)

    def get(self, name: str) -> Account | None:
        return self._read().get(name)

    @contextlib.contextmanager
    def change(self) -> Iterator[dict[str, Account]]:
        """Read-modify-write under the lock; nothing is written if the block raises."""
        with self._locked():
            accounts = self._read()
            yield accounts
            data = json.dumps([asdict(a) for a in accounts.values()], ensure_ascii=False, indent=1)
            write_private(self.path, data.encode())


class KeyStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder / "keys"

    def load(self) -> dict[str, tuple[KeyInfo, ec.EllipticCurvePrivateKey]]:
        out = {}
        for pem in sorted(self.folder.glob("*.pem")) if self.folder.exists() else []:
            key = serialization.load_pem_private_key(pem.read_bytes(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):  # add() writes P-256 keys only
                raise ValueError(f"{pem}: not an EC private key")
            out[pem.stem] = (KeyInfo(pem.stem, pem.stat().st_mtime), key)
        return out

    def add(self, kid: str, key: ec.EllipticCurvePrivateKey, created: float) -> None:
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = self.folder / f"{kid}.pem"
        write_private(path, pem)
        os.utime(path, (created, created))  # the file time is the key's creation time

    def remove(self, kid: str) -> None:
        (self.folder / f"{kid}.pem").unlink(missing_ok=True)

    def version(self) -> float:
        return self.folder.stat().st_mtime if self.folder.exists() else 0.0
