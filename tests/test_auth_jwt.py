"""Session JWTs: real keys, real signatures, and a JWKS served over loopback HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stepgraph.auth.jwt import AuthUnavailable, JwtSettings, JwtVerifier
from stepgraph.auth.viewer import READ_STEP_RESULTS, WRITE_STEP_RESULTS, Unauthenticated, Viewer
from stepgraph.settings import SettingsError
from tests.session_tokens import ISSUER, UNSET, SigningKey, claims, rsa_key, sign


@pytest.fixture(scope="module")
def rsa_current() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture(scope="module")
def rsa_next() -> SigningKey:
    return rsa_key("rsa-2")


@pytest.fixture(scope="module")
def ec_current() -> SigningKey:
    return SigningKey("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1()))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    """A compact JWT built by hand, for tokens PyJWT itself refuses to produce."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    if secret is None:
        return f"{signing_input}."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


class JwksServer:
    """A JWKS endpoint on loopback that counts its requests."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(owner.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        # A short poll interval keeps shutdown (and so each test's teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> JwksServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


class Clock:
    """Monotonic seconds for the key cache, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


MakeVerifier = Callable[..., JwtVerifier]


@pytest.fixture
def jwks(rsa_current: SigningKey, ec_current: SigningKey) -> Iterator[JwksServer]:
    with JwksServer() as server:
        server.keys = [rsa_current.jwk, ec_current.jwk]
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_verifier(jwks: JwksServer, clock: Clock) -> AsyncIterator[MakeVerifier]:
    made: list[JwtVerifier] = []

    def make(**settings: Any) -> JwtVerifier:
        settings.setdefault("issuer", ISSUER)
        if "jwks_file" not in settings:
            settings.setdefault("jwks_url", jwks.url)
        verifier = JwtVerifier(JwtSettings(**settings), clock=clock)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


async def refused(verifier: JwtVerifier, token: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        await verifier.verify(token)
    assert token not in caught.value.message
    return caught.value.message


def free_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/.well-known/jwks.json"


# Valid tokens and the claims they map to


async def test_rs256_token_maps_claims_to_viewer(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    viewer = await make_verifier().verify(sign(rsa_current))
    assert viewer == Viewer(
        user_id="user_123",
        organization_id="org_abc",
        scopes=frozenset({READ_STEP_RESULTS}),
        method="jwt",
        credential_id="user_123",
    )


async def test_es256_token_with_v2_organization_path(
    make_verifier: MakeVerifier, ec_current: SigningKey
) -> None:
    token = sign(ec_current, org_id=UNSET, v=2, o={"id": "org_v2", "rol": "admin"})
    viewer = await make_verifier(organization_claim="o.id").verify(token)
    assert (viewer.user_id, viewer.organization_id) == ("user_123", "org_v2")


async def test_scopes_from_space_separated_string(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = sign(rsa_current, scope=f"{READ_STEP_RESULTS} {WRITE_STEP_RESULTS}")
    viewer = await make_verifier().verify(token)
    assert viewer.scopes == {READ_STEP_RESULTS, WRITE_STEP_RESULTS}


async def test_scopes_from_list(make_verifier: MakeVerifier, rsa_current: SigningKey) -> None:
    token = sign(rsa_current, scp=[WRITE_STEP_RESULTS])
    viewer = await make_verifier(scopes_claim="scp").verify(token)
    assert viewer.scopes == {WRITE_STEP_RESULTS}


async def test_default_scopes_when_claim_absent(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    verifier = make_verifier(default_scopes=frozenset({"custom"}))
    assert (await verifier.verify(sign(rsa_current))).scopes == {"custom"}


async def test_malformed_scope_claim_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    message = await refused(make_verifier(), sign(rsa_current, scope=42))
    assert '"scope"' in message


async def test_token_without_kid_uses_the_only_key(
    make_verifier: MakeVerifier, jwks: JwksServer, rsa_current: SigningKey
) -> None:
    jwks.keys = [rsa_current.jwk]
    viewer = await make_verifier().verify(sign(rsa_current, kid=None))
    assert viewer.user_id == "user_123"


async def test_token_without_kid_refused_when_several_keys(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    assert "kid" in await refused(make_verifier(), sign(rsa_current, kid=None))


# Time claims


async def test_expired_token_refused(make_verifier: MakeVerifier, rsa_current: SigningKey) -> None:
    token = sign(rsa_current, exp=int(time.time()) - 31)
    assert "expired" in await refused(make_verifier(leeway_seconds=30), token)


async def test_expired_within_leeway_accepted(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = sign(rsa_current, exp=int(time.time()) - 10)
    assert await make_verifier(leeway_seconds=30).verify(token)


async def test_token_without_exp_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    assert '"exp"' in await refused(make_verifier(), sign(rsa_current, exp=UNSET))


async def test_not_yet_valid_beyond_leeway_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = sign(rsa_current, nbf=int(time.time()) + 45)
    assert "not valid yet" in await refused(make_verifier(leeway_seconds=30), token)


async def test_not_yet_valid_within_leeway_accepted(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = sign(rsa_current, nbf=int(time.time()) + 10)
    assert await make_verifier(leeway_seconds=30).verify(token)


async def test_issued_in_the_future_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = sign(rsa_current, iat=int(time.time()) + 300)
    assert "not valid yet" in await refused(make_verifier(), token)


# Issuer, audience, authorized party, subject, organization


async def test_wrong_issuer_refused(make_verifier: MakeVerifier, rsa_current: SigningKey) -> None:
    token = sign(rsa_current, iss="https://evil.example.test")
    assert "issuer" in await refused(make_verifier(), token)


async def test_wrong_audience_refused(make_verifier: MakeVerifier, rsa_current: SigningKey) -> None:
    token = sign(rsa_current, aud="someone-else")
    assert "audience" in await refused(make_verifier(audience="stepgraph"), token)


async def test_missing_audience_refused_when_configured(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    assert "audience" in await refused(make_verifier(audience="stepgraph"), sign(rsa_current))


async def test_matching_audience_accepted(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = sign(rsa_current, aud=["stepgraph", "other"])
    assert await make_verifier(audience="stepgraph").verify(token)


async def test_wrong_authorized_party_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    verifier = make_verifier(authorized_parties=("https://stepgraph.example.test",))
    assert "azp" in await refused(verifier, sign(rsa_current))


async def test_listed_authorized_party_accepted(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    verifier = make_verifier(authorized_parties=("https://app.example.test",))
    assert await verifier.verify(sign(rsa_current))


async def test_missing_sub_refused(make_verifier: MakeVerifier, rsa_current: SigningKey) -> None:
    assert '"sub"' in await refused(make_verifier(), sign(rsa_current, sub=UNSET))


async def test_missing_organization_claim_named(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    verifier = make_verifier(organization_claim="o.id")
    assert '"o.id"' in await refused(verifier, sign(rsa_current))


# Algorithms and forgeries


async def test_malformed_token_refused(make_verifier: MakeVerifier) -> None:
    assert "well-formed" in await refused(make_verifier(), "not-a.jwt")


async def test_alg_none_refused_without_fetching_keys(
    make_verifier: MakeVerifier, jwks: JwksServer, rsa_current: SigningKey
) -> None:
    token = hand_made({"alg": "none", "kid": rsa_current.kid}, claims(), secret=None)
    assert "algorithm" in await refused(make_verifier(), token)
    assert jwks.requests == 0


async def test_hs256_signed_with_public_key_pem_refused(
    make_verifier: MakeVerifier, jwks: JwksServer, rsa_current: SigningKey
) -> None:
    header = {"alg": "HS256", "typ": "JWT", "kid": rsa_current.kid}
    token = hand_made(header, claims(), secret=rsa_current.public_pem())
    assert "algorithm" in await refused(make_verifier(), token)
    assert jwks.requests == 0


async def test_algorithm_outside_allow_list_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey
) -> None:
    token = jwt.encode(claims(), rsa_current.private, "RS512", headers={"kid": rsa_current.kid})
    assert "algorithm" in await refused(make_verifier(), token)


async def test_algorithm_not_matching_the_key_refused(
    make_verifier: MakeVerifier, ec_current: SigningKey, rsa_current: SigningKey
) -> None:
    token = sign(ec_current, kid=rsa_current.kid)
    assert "algorithm" in await refused(make_verifier(), token)


async def test_signature_by_another_key_refused(
    make_verifier: MakeVerifier, rsa_current: SigningKey, rsa_next: SigningKey
) -> None:
    token = sign(rsa_next, kid=rsa_current.kid)
    assert "signature" in await refused(make_verifier(), token)


async def test_unknown_key_refused(make_verifier: MakeVerifier, rsa_next: SigningKey) -> None:
    assert "unknown key" in await refused(make_verifier(), sign(rsa_next))


@pytest.mark.parametrize("algorithm", ["HS256", "none", "EdDSA"])
def test_settings_refuse_unsupported_algorithms(algorithm: str) -> None:
    with pytest.raises(SettingsError):
        JwtSettings(jwks_url="https://clerk.example.test/jwks", algorithms=(algorithm,))


def test_settings_refuse_plain_http_off_loopback() -> None:
    with pytest.raises(SettingsError):
        JwtSettings(jwks_url="http://clerk.example.test/.well-known/jwks.json")


def test_settings_refuse_two_key_sources(tmp_path: Path) -> None:
    with pytest.raises(SettingsError):
        JwtSettings(jwks_url="https://clerk.example.test/jwks", jwks_file=tmp_path / "jwks.json")


# Fetching and caching the JWKS


async def test_keys_cached_until_they_expire(
    make_verifier: MakeVerifier, jwks: JwksServer, clock: Clock, rsa_current: SigningKey
) -> None:
    verifier = make_verifier(jwks_cache_seconds=600)
    for _ in range(3):
        await verifier.verify(sign(rsa_current))
    clock.advance(601)
    await verifier.verify(sign(rsa_current))
    assert jwks.requests == 2


async def test_key_rotation_triggers_exactly_one_refresh(
    make_verifier: MakeVerifier,
    jwks: JwksServer,
    clock: Clock,
    rsa_current: SigningKey,
    rsa_next: SigningKey,
) -> None:
    verifier = make_verifier()
    await verifier.verify(sign(rsa_current))
    jwks.keys = [*jwks.keys, rsa_next.jwk]
    clock.advance(31)
    viewer = await verifier.verify(sign(rsa_next))
    assert viewer.user_id == "user_123"
    assert jwks.requests == 2


async def test_unknown_kid_flood_refreshes_at_most_once_per_window(
    make_verifier: MakeVerifier, jwks: JwksServer, clock: Clock, rsa_next: SigningKey
) -> None:
    verifier = make_verifier(jwks_min_refresh_seconds=30)

    async def flood() -> None:
        tokens = [sign(rsa_next, kid=uuid.uuid4().hex) for _ in range(25)]
        outcomes = await asyncio.gather(
            *(verifier.verify(token) for token in tokens), return_exceptions=True
        )
        assert all(isinstance(outcome, Unauthenticated) for outcome in outcomes)

    await flood()  # the first load, shared by all
    clock.advance(31)
    await flood()  # one refresh, shared by all
    clock.advance(10)
    await flood()  # within the window: none
    assert jwks.requests == 2


async def test_concurrent_unknown_kids_share_one_refresh(
    make_verifier: MakeVerifier, jwks: JwksServer, rsa_current: SigningKey, rsa_next: SigningKey
) -> None:
    verifier = make_verifier(jwks_min_refresh_seconds=0)
    await verifier.verify(sign(rsa_current))
    tokens = [sign(rsa_next, kid=uuid.uuid4().hex) for _ in range(25)]
    outcomes = await asyncio.gather(
        *(verifier.verify(token) for token in tokens), return_exceptions=True
    )
    assert all(isinstance(outcome, Unauthenticated) for outcome in outcomes)
    assert jwks.requests == 2


async def test_keys_from_file(
    make_verifier: MakeVerifier, jwks: JwksServer, tmp_path: Path, ec_current: SigningKey
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [ec_current.jwk]}))
    viewer = await make_verifier(jwks_file=path).verify(sign(ec_current))
    assert viewer.organization_id == "org_abc"
    assert jwks.requests == 0


async def test_unreachable_jwks_is_unavailable_not_unauthenticated(
    clock: Clock, rsa_current: SigningKey
) -> None:
    verifier = JwtVerifier(JwtSettings(jwks_url=free_port_url(), issuer=ISSUER), clock=clock)
    try:
        with pytest.raises(AuthUnavailable) as caught:
            await verifier.verify(sign(rsa_current))
    finally:
        await verifier.aclose()
    assert not isinstance(caught.value, Unauthenticated)
    assert "127.0.0.1" not in caught.value.message


async def test_jwks_server_error_is_unavailable_and_retries_are_rate_limited(
    make_verifier: MakeVerifier, jwks: JwksServer, clock: Clock, rsa_current: SigningKey
) -> None:
    jwks.status = 500
    verifier = make_verifier()
    for _ in range(3):
        with pytest.raises(AuthUnavailable):
            await verifier.verify(sign(rsa_current))
    assert jwks.requests == 1
    clock.advance(31)
    jwks.status = 200
    assert await verifier.verify(sign(rsa_current))
    assert jwks.requests == 2


async def test_loaded_keys_stay_in_use_when_a_refresh_fails(
    make_verifier: MakeVerifier, jwks: JwksServer, clock: Clock, rsa_current: SigningKey
) -> None:
    verifier = make_verifier()
    await verifier.verify(sign(rsa_current))
    jwks.status = 503
    clock.advance(601)
    assert await verifier.verify(sign(rsa_current))
    assert jwks.requests == 2
