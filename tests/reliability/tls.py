"""A throwaway certificate authority and a broker certificate, made with ``openssl``."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"openssl {' '.join(args)}: {res.stderr}"


def make_ca_and_broker_cert(folder: Path, host: str = "127.0.0.1") -> TlsFiles:
    """A CA (``ca.pem``) and a broker certificate for ``host`` and localhost signed by it
    (``broker.pem``, key in ``broker.key`` as unencrypted PKCS#8), valid for one day."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "ca.key", cwd=folder)  # fmt: skip
    _openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "1",
             "-subj", "/CN=streamsense test CA", "-out", "ca.pem", cwd=folder)  # fmt: skip
    _openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "broker.key", cwd=folder)  # fmt: skip
    _openssl("req", "-new", "-key", "broker.key", "-subj", f"/CN={host}",
             "-out", "broker.csr", cwd=folder)  # fmt: skip
    (folder / "san.ext").write_text(
        f"subjectAltName=IP:{host},DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n"
        "keyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "1", "-sha256", "-extfile", "san.ext",
             "-out", "broker.pem", cwd=folder)  # fmt: skip
    return TlsFiles(folder / "ca.pem", folder / "broker.pem", folder / "broker.key")
