"""Token-signing keys: the sandbox key pair and JWKS documents for trusted issuers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ..fileutil import write_private


def generate_signing_key(private_path: Path, jwks_path: Path) -> None:
    """Create an RSA key for signing sandbox tokens and publish its public half as a JWKS file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_private(private_path, pem)
    jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": key_id(key.public_key()), "use": "sig", "alg": "RS512"})
    jwks_path.write_text(json.dumps({"keys": [jwk]}, indent=2))


def key_id(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[:16]


def load_private_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the signing key must be an RSA key")
    return key


def load_jwks(source: str) -> jwt.PyJWKSet:
    """A JWKS from a file path. (URLs and OpenID Connect discovery: ``security.jwks.IssuerKeys``.)"""
    return jwt.PyJWKSet.from_dict(json.loads(Path(source).read_text()))
