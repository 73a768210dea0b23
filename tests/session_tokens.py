"""Session JWTs for tests: keys the tests generate, Clerk-like claims, signing."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://clerk.example.test"
UNSET = object()


@dataclass(frozen=True)
class SigningKey:
    """A private key and the public JWK a JWKS would publish for it."""

    kid: str
    algorithm: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @property
    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            body = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            body = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**body, "kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def claims(**overrides: object) -> dict[str, Any]:
    """Clerk-like session claims, valid now; pass ``UNSET`` to drop one."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user_123",
        "org_id": "org_abc",
        "sid": "sess_1",
        "azp": "https://app.example.test",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    base.update(overrides)
    return {name: value for name, value in base.items() if value is not UNSET}


def sign(key: SigningKey, kid: object = UNSET, **overrides: object) -> str:
    headers = {} if kid is None else {"kid": key.kid if kid is UNSET else kid}
    return jwt.encode(claims(**overrides), key.private, algorithm=key.algorithm, headers=headers)
