"""Throw-away keys, certificates and JWTs for the secured broker, made with ``openssl``.

Everything here is for a broker on 127.0.0.1 that lives as long as a test run or a
developer's session: a CA, a broker certificate (SAN ``IP:127.0.0.1``, ``DNS:localhost``,
usable as a server and as a client certificate, since the broker talks TLS to itself on
its inter-broker and controller listeners), a client certificate per user whose key is
written twice (PKCS#8 encrypted with a password, and unencrypted), an RSA key that signs
JWTs and the JWKS that publishes it.

Only the standard library and the ``openssl`` command are used, so ``scripts/kafka`` keeps
running before any virtual env exists. Passwords reach ``openssl`` through its
environment (``-passout env:``), never its command line.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import KafkaLocalError

#: The subject's organisation parts: ``ssl.principal.mapping.rules`` maps a certificate
#: with exactly these to ``User:<CN>``.
SUBJECT_SUFFIX = "OU=packflow-local,O=packflow"
CERT_DAYS = 365
_PASSWORD_ENV = "PACKFLOW_KAFKA_LOCAL_KEY_PASSWORD"
_OPENSSL_TIMEOUT = 60.0
_EXPONENT = re.compile(r"publicExponent:\s*(\d+)")
_MODULUS = re.compile(r"Modulus=([0-9A-Fa-f]+)")


class PkiError(KafkaLocalError):
    """``openssl`` is missing or one of its commands failed."""


@dataclass(frozen=True)
class CertificateFiles:
    """The PEM files of one certificate made by :func:`issue_certificate`.

    ``bundle`` holds the unencrypted key, the certificate and the CA (what Kafka's
    ``ssl.keystore.type=PEM`` reads and what ``ssl.SSLContext.load_cert_chain`` accepts
    as one file); ``cert`` the certificate followed by the CA; ``key`` the key as
    PKCS#8, encrypted when a password was given; ``unencrypted_key`` the same key in
    clear.
    """

    cert: Path
    key: Path
    unencrypted_key: Path
    bundle: Path


def _openssl() -> str:
    found = shutil.which("openssl")
    if found is None:
        raise PkiError(
            "the secured broker needs the openssl command to make its throw-away "
            "certificates, and it is not on PATH (e.g. apt-get install openssl)"
        )
    return found


def _run(args: list[str], *, env: Mapping[str, str] | None = None, data: bytes = b"") -> bytes:
    command = [_openssl(), *args]
    try:
        result = subprocess.run(
            command,
            input=data,
            capture_output=True,
            env={**os.environ, **(env or {})},
            timeout=_OPENSSL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PkiError(f"openssl {args[0]} failed: {exc}") from exc
    if result.returncode != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = detail[-1] if detail else f"exit {result.returncode}"
        raise PkiError(f"openssl {args[0]} failed: {reason[:300]}")
    return result.stdout


def _private(path: Path) -> None:
    path.chmod(0o600)


def _new_ec_key(key: Path) -> list[str]:
    """``openssl req`` options for a new, unencrypted EC P-256 key written to ``key``."""
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-noenc", "-keyout", str(key)]


def _subject(common_name: str) -> str:
    """``-subj`` of our certificates: :data:`SUBJECT_SUFFIX`'s parts and ``CN=common_name``."""
    return f"/O=packflow/OU=packflow-local/CN={common_name}"


def new_password() -> str:
    """A random password (hex, so it needs no quoting in any config syntax)."""
    return secrets.token_hex(16)


def make_ca(directory: Path, name: str = "ca", common_name: str = "packflow local CA") -> Path:
    """Make a self-signed EC P-256 CA in ``directory``; return its certificate.

    The key is written next to it as ``<name>-key.pem`` (mode 0600).
    """
    cert, key = directory / f"{name}.pem", directory / f"{name}-key.pem"
    _run(
        [
            "req",
            "-x509",
            "-new",
            *_new_ec_key(key),
            "-out",
            str(cert),
            "-days",
            str(CERT_DAYS),
            "-sha256",
            "-subj",
            _subject(common_name),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]
    )
    _private(key)
    return cert


def issue_certificate(
    directory: Path,
    ca_cert: Path,
    name: str,
    common_name: str,
    *,
    server: bool,
    key_password: str | None = None,
) -> CertificateFiles:
    """Issue a certificate for ``CN=<common_name>,OU=packflow-local,O=packflow``.

    It is signed by ``ca_cert`` with the key :func:`make_ca` wrote beside it.

    ``server=True`` adds ``serverAuth`` and the loopback SANs (``IP:127.0.0.1``,
    ``DNS:localhost``) to ``clientAuth``. With ``key_password`` the ``key`` file is
    PKCS#8 encrypted (AES-256-CBC) with it; the unencrypted key is always written too.
    """
    ca_key = ca_cert.with_name(ca_cert.stem + "-key.pem")
    plain_key = directory / f"{name}-key.unencrypted.pem"
    csr = directory / f"{name}.csr"
    signed = directory / f"{name}-only.pem"
    extensions = directory / f"{name}.ext"
    extensions.write_text(_extensions(server))
    try:
        _run(
            [
                "req",
                "-new",
                *_new_ec_key(plain_key),
                "-out",
                str(csr),
                "-subj",
                _subject(common_name),
            ]
        )
        _private(plain_key)
        _sign(csr, ca_cert, ca_key, extensions, signed)
    finally:
        csr.unlink(missing_ok=True)
        extensions.unlink(missing_ok=True)
    chain = signed.read_text() + ca_cert.read_text()
    signed.unlink()
    cert = directory / f"{name}.pem"
    cert.write_text(chain)
    bundle = directory / f"{name}-bundle.pem"
    bundle.write_text(plain_key.read_text() + chain)
    _private(bundle)
    key = plain_key
    if key_password is not None:
        key = directory / f"{name}-key.pem"
        _encrypt_key(plain_key, key, key_password)
    return CertificateFiles(cert=cert, key=key, unencrypted_key=plain_key, bundle=bundle)


def _extensions(server: bool) -> str:
    """The ``-extfile`` of a certificate :func:`issue_certificate` makes."""
    usage = "serverAuth,clientAuth" if server else "clientAuth"
    lines = [
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature",
        f"extendedKeyUsage={usage}",
    ]
    if server:
        lines.append("subjectAltName=IP:127.0.0.1,DNS:localhost")
    return "\n".join(lines) + "\n"


def _sign(csr: Path, ca_cert: Path, ca_key: Path, extensions: Path, signed: Path) -> None:
    """Sign ``csr`` with the CA (a random serial, :data:`CERT_DAYS`) into ``signed``."""
    _run(
        [
            "x509",
            "-req",
            "-in",
            str(csr),
            "-CA",
            str(ca_cert),
            "-CAkey",
            str(ca_key),
            "-set_serial",
            f"0x{secrets.token_hex(16)}",
            "-days",
            str(CERT_DAYS),
            "-sha256",
            "-extfile",
            str(extensions),
            "-out",
            str(signed),
        ]
    )


def _encrypt_key(plain_key: Path, key: Path, password: str) -> None:
    """Write ``plain_key`` to ``key`` as PKCS#8 encrypted (AES-256-CBC) with ``password``."""
    _run(
        [
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-in",
            str(plain_key),
            "-out",
            str(key),
            "-passout",
            f"env:{_PASSWORD_ENV}",
        ],
        env={_PASSWORD_ENV: password},
    )
    _private(key)


# -- JWTs for the OAUTHBEARER listener when no identity provider is given ---------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def make_jwks(directory: Path) -> tuple[Path, Path, str]:
    """Make an RSA-2048 signing key and the JWKS that publishes it.

    Returns ``(jwks_file, signing_key_file, kid)``; the ``kid`` is the key's RFC 7638
    thumbprint.
    """
    key = directory / "jwt-signing-key.pem"
    _run(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(key)])
    _private(key)
    text = _run(["rsa", "-in", str(key), "-noout", "-text", "-modulus"]).decode()
    modulus = _MODULUS.search(text)
    exponent = _EXPONENT.search(text)
    if modulus is None or exponent is None:
        raise PkiError("openssl rsa printed no modulus or exponent for the JWT signing key")
    exponent_value = int(exponent.group(1))
    hex_modulus = modulus.group(1)
    n = _b64url(bytes.fromhex(hex_modulus if len(hex_modulus) % 2 == 0 else "0" + hex_modulus))
    e = _b64url(exponent_value.to_bytes((exponent_value.bit_length() + 7) // 8, "big"))
    thumbprint = json.dumps({"e": e, "kty": "RSA", "n": n}, separators=(",", ":"))
    kid = _b64url(hashlib.sha256(thumbprint.encode()).digest())
    jwk = {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": n, "e": e}
    jwks = directory / "jwks.json"
    jwks.write_text(json.dumps({"keys": [jwk]}, indent=2) + "\n")
    return jwks, key, kid


def sign_jwt(
    signing_key: Path,
    kid: str,
    *,
    subject: str,
    issuer: str,
    audience: str,
    lifetime: float,
    scope: str | None = None,
    now: float | None = None,
) -> str:
    """An RS256 JWT (``sub``, ``iss``, ``aud``, ``iat``, ``exp``, optional ``scope``)."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "sub": subject,
        "iss": issuer,
        "aud": audience,
        "iat": issued,
        "exp": issued + int(lifetime),
    }
    if scope:
        claims["scope"] = scope
    header = {"alg": "RS256", "typ": "JWT", "kid": kid}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = _run(
        ["dgst", "-sha256", "-sign", str(signing_key), "-binary"], data=signing_input.encode()
    )
    return f"{signing_input}.{_b64url(signature)}"
