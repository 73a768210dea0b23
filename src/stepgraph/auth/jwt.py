"""Session JWTs (Clerk session tokens and the like): verified against a JWKS -> Viewer.

A :class:`JwtVerifier` is created by the app's lifespan and closed with it; it owns the
HTTP client and the cached signing keys, so nothing lives at module level.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from jwt.types import Options

from stepgraph.auth.viewer import READ_STEP_RESULTS, Unauthenticated, Viewer
from stepgraph.errors import SettingsError

# Only public-key algorithms over the key types a JWKS may hold for us (RSA, EC).
# HMAC (HS*) is refused outright: with a JWKS the "secret" would be a public key,
# which is the classic algorithm-confusion forgery. "none" needs no explanation.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
)
_KEY_TYPES = frozenset({"RSA", "EC"})
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class AuthUnavailable(Exception):
    """Session tokens cannot be checked right now: the JWKS is unreachable or unusable.

    This is deliberately *not* an :class:`Unauthenticated` (401). The caller's token may
    be perfectly valid; it is our side (or the identity provider) that is down. A 401
    would tell clients to drop the session and sign in again, turning an outage into a
    wave of forced logouts and retries, and would hide the outage from monitoring. The
    app maps this to 503 Service Unavailable, which clients retry.

    ``message`` is safe to show the caller: it names neither the JWKS source nor the
    underlying error (those go to the log).
    """

    def __init__(self, message: str = "session tokens cannot be verified right now") -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class JwtSettings:
    """How session JWTs are verified. JWTs are enabled when exactly one JWKS source is set."""

    jwks_url: str | None = None
    jwks_file: Path | None = None
    issuer: str | None = None
    # Checked against `aud` when set. Clerk session tokens carry no `aud` by default.
    audience: str | None = None
    # Checked against `azp` when non-empty (Clerk puts the frontend's origin there).
    authorized_parties: tuple[str, ...] = ()
    leeway_seconds: int = 30
    # A literal claim name, or a dotted path such as `o.id` (Clerk's v2 session tokens).
    organization_claim: str = "org_id"
    # A space-separated string or a list of strings; when absent, `default_scopes` apply.
    scopes_claim: str = "scope"
    default_scopes: frozenset[str] = frozenset({READ_STEP_RESULTS})
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwks_cache_seconds: int = 600
    # Refreshes caused by unknown `kid`s happen at most this often, so a flood of
    # tokens with made-up kids cannot turn into a flood of requests to the JWKS URL.
    jwks_min_refresh_seconds: int = 30
    http_timeout_seconds: float = 5

    def __post_init__(self) -> None:
        if self.jwks_url is not None and self.jwks_file is not None:
            raise SettingsError("set either a JWKS URL or a JWKS file for session JWTs, not both")
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        if not self.algorithms:
            raise SettingsError("session JWTs need at least one allowed algorithm")
        refused = [alg for alg in self.algorithms if alg not in SUPPORTED_ALGORITHMS]
        if refused:
            raise SettingsError(
                f"session JWT algorithms {refused} are not accepted; "
                f"choose from {sorted(SUPPORTED_ALGORITHMS)}"
            )
        if self.leeway_seconds < 0:
            raise SettingsError("the session JWT leeway must not be negative")
        if self.jwks_cache_seconds < 1:
            raise SettingsError("the JWKS cache lifetime must be at least one second")
        if self.jwks_min_refresh_seconds < 0:
            raise SettingsError("the JWKS minimum refresh interval must not be negative")
        if self.http_timeout_seconds <= 0:
            raise SettingsError("the JWKS HTTP timeout must be positive")
        if not self.organization_claim or not self.scopes_claim:
            raise SettingsError("the organization and scopes claim names must not be empty")

    @property
    def enabled(self) -> bool:
        """Whether a JWKS source is configured, i.e. whether session JWTs are accepted."""
        return self.jwks_url is not None or self.jwks_file is not None


def _check_jwks_url(url: str) -> None:
    # Whoever can tamper with the JWKS response can mint sessions, so plain HTTP is
    # only allowed on loopback (local development and tests).
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return
    raise SettingsError("the JWKS URL must be https:// (plain http only on loopback)")


class _KeySet:
    """One loaded JWKS: the usable signing keys, and the verification keys built so far."""

    def __init__(self, jwks: list[dict[str, Any]]) -> None:
        self._jwks = jwks
        self._by_kid: dict[str, int] = {}
        for index, jwk in enumerate(jwks):
            kid = jwk.get("kid")
            if isinstance(kid, str):
                self._by_kid.setdefault(kid, index)
        # Built on first use per (key, algorithm); dropped with the key set on refresh.
        self._prepared: dict[tuple[int, str], jwt.PyJWK] = {}

    def find(self, kid: str | None) -> int | None:
        """The index of the key for ``kid``; a token without kid may use a lone key."""
        if kid is None:
            return 0 if len(self._jwks) == 1 else None
        return self._by_kid.get(kid)

    def key(self, index: int, algorithm: str) -> jwt.PyJWK:
        """The verification key at ``index`` bound to ``algorithm``, or refuse the token."""
        prepared = self._prepared.get((index, algorithm))
        if prepared is not None:
            return prepared
        jwk = self._jwks[index]
        declared = jwk.get("alg")
        if declared is not None and declared != algorithm:
            raise Unauthenticated("the token's algorithm does not match its signing key")
        try:
            prepared = jwt.PyJWK(jwk, algorithm=algorithm)
        except (jwt.PyJWTError, ValueError, TypeError):
            # e.g. an ES256 token naming an RSA key.
            raise Unauthenticated("the token's algorithm does not match its signing key") from None
        self._prepared[(index, algorithm)] = prepared
        return prepared


class JwtVerifier:
    """Verifies session JWTs against a JWKS (a URL or a file) and maps them to a Viewer.

    Keys are cached for ``jwks_cache_seconds``. A token naming an unknown ``kid`` causes
    one refresh (at most one per ``jwks_min_refresh_seconds``; concurrent verifications
    share it). When a refresh fails, the keys already loaded stay in use, since a
    session token's own ``exp`` bounds its life and keys do not weaken with age.
    Verification raises :class:`AuthUnavailable` when no keys were ever loaded, or when
    a token names an unknown ``kid`` and the JWKS cannot be re-read to check it.
    Failed loads are retried at most once per ``jwks_min_refresh_seconds``, so an
    outage does not make every request wait for the HTTP timeout.

    ``clock`` (monotonic seconds) times the cache only; token times use the wall clock.
    """

    def __init__(
        self, settings: JwtSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not settings.enabled:
            raise SettingsError("session JWTs need a JWKS URL or a JWKS file")
        self._settings = settings
        self._clock = clock
        self._log = logging.getLogger(__name__)
        self._client: httpx.AsyncClient | None = None
        if settings.jwks_url is not None:
            self._client = httpx.AsyncClient(
                timeout=settings.http_timeout_seconds,
                headers={"Accept": "application/json"},
            )
        self._lock = asyncio.Lock()
        self._keys: _KeySet | None = None
        self._loaded_at = 0.0
        # Every finished load attempt, successful or not, counts towards the rate limit.
        self._attempted_at: float | None = None
        self._attempts = 0
        self._last_attempt_failed = False

    async def aclose(self) -> None:
        """Close the HTTP client used to fetch the JWKS."""
        if self._client is not None:
            await self._client.aclose()

    async def verify(self, token: str) -> Viewer:
        """Verify a session JWT and return its caller.

        Raises :class:`Unauthenticated` for any token that is not acceptable (the
        message never echoes the token), and :class:`AuthUnavailable` when the token
        cannot be checked because the JWKS cannot be loaded.
        """
        settings = self._settings
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a well-formed JWT") from None
        algorithm = header.get("alg")
        # Checked before any key lookup, so refused algorithms never cost a JWKS fetch,
        # and again by PyJWT through `algorithms=` below.
        if (
            not isinstance(algorithm, str)
            or algorithm.lower() == "none"
            or algorithm.upper().startswith("HS")
            or algorithm not in settings.algorithms
        ):
            raise Unauthenticated("the token's signing algorithm is not accepted")
        # `jku`, `x5u`, `jwk` and `x5c` headers are ignored on purpose: keys come from
        # our configured JWKS only, never from the token itself.
        kid = header.get("kid")
        key = await self._signing_key(kid if isinstance(kid, str) else None, algorithm)

        options: Options = {
            "require": ["exp", "sub"],
            "verify_aud": settings.audience is not None,
            "enforce_minimum_key_length": True,
        }
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=list(settings.algorithms),
                options=options,
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway_seconds,
            )
        except jwt.PyJWTError as error:
            raise _refusal(error) from None
        return self._viewer(claims)

    def _viewer(self, claims: Mapping[str, Any]) -> Viewer:
        settings = self._settings
        if settings.authorized_parties and claims.get("azp") not in settings.authorized_parties:
            raise Unauthenticated("the token was issued to an unexpected party (azp)")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated('the token has no "sub" claim')
        organization = _claim(claims, settings.organization_claim)
        if not isinstance(organization, str) or not organization:
            raise Unauthenticated(
                f'the token has no "{settings.organization_claim}" claim: '
                "sign in with an active organization"
            )
        return Viewer(
            user_id=subject,
            organization_id=organization,
            scopes=self._scopes(claims),
            method="jwt",
            credential_id=subject,
        )

    def _scopes(self, claims: Mapping[str, Any]) -> frozenset[str]:
        name = self._settings.scopes_claim
        value = _claim(claims, name)
        if value is None:
            return self._settings.default_scopes
        if isinstance(value, str):
            return frozenset(value.split())
        if isinstance(value, list) and all(isinstance(scope, str) for scope in value):
            return frozenset(value)
        raise Unauthenticated(
            f'the token\'s "{name}" claim must be a space-separated string or a list of strings'
        )

    async def _signing_key(self, kid: str | None, algorithm: str) -> jwt.PyJWK:
        keys = await self._current_keys()
        index = keys.find(kid)
        if index is None and kid is not None:
            keys = await self._refresh_for_unknown_kid(self._attempts)
            index = keys.find(kid)
        if index is None:
            if kid is None:
                raise Unauthenticated("the token does not name its signing key (kid)")
            raise Unauthenticated("the token was signed by an unknown key")
        return keys.key(index, algorithm)

    async def _current_keys(self) -> _KeySet:
        if self._fresh() and self._keys is not None:
            return self._keys
        async with self._lock:
            # Another verification may have loaded the keys while this one waited.
            if self._fresh() and self._keys is not None:
                return self._keys
            if not self._may_attempt():
                return self._keys_or_unavailable()
            # On failure the keys already loaded, if any, stay in use.
            with contextlib.suppress(AuthUnavailable):
                await self._load()
            return self._keys_or_unavailable()

    async def _refresh_for_unknown_kid(self, attempts_seen: int) -> _KeySet:
        async with self._lock:
            if self._attempts == attempts_seen and self._may_attempt():
                await self._load()
            elif self._last_attempt_failed:
                # Without a current JWKS an unknown kid may well be a freshly rotated key:
                # that is our outage, not the caller's mistake.
                raise AuthUnavailable()
            return self._keys_or_unavailable()

    def _fresh(self) -> bool:
        return (
            self._keys is not None
            and self._clock() - self._loaded_at < self._settings.jwks_cache_seconds
        )

    def _may_attempt(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self._settings.jwks_min_refresh_seconds
        )

    def _keys_or_unavailable(self) -> _KeySet:
        if self._keys is None:
            raise AuthUnavailable()
        return self._keys

    async def _load(self) -> None:
        """Load the JWKS (the lock is held); raise :class:`AuthUnavailable` on failure."""
        try:
            keys = _parse_jwks(await self._read_jwks())
        except AuthUnavailable:
            self._attempt_finished(failed=True)
            raise
        self._keys = keys
        self._loaded_at = self._clock()
        self._attempt_finished(failed=False)

    def _attempt_finished(self, *, failed: bool) -> None:
        self._attempted_at = self._clock()
        self._attempts += 1
        self._last_attempt_failed = failed

    async def _read_jwks(self) -> bytes:
        settings = self._settings
        if settings.jwks_file is not None:
            try:
                return await asyncio.to_thread(settings.jwks_file.read_bytes)
            except OSError as error:
                self._log.warning("cannot read the JWKS file %s: %s", settings.jwks_file, error)
                raise AuthUnavailable() from error
        if self._client is None or settings.jwks_url is None:
            raise AuthUnavailable()
        try:
            response = await self._client.get(settings.jwks_url)
        except httpx.HTTPError as error:
            self._log.warning("cannot fetch the JWKS from %s: %r", settings.jwks_url, error)
            raise AuthUnavailable() from error
        if response.status_code != 200:
            self._log.warning(
                "cannot fetch the JWKS from %s: HTTP %s", settings.jwks_url, response.status_code
            )
            raise AuthUnavailable()
        return response.content


def _parse_jwks(document: bytes) -> _KeySet:
    """The usable signing keys of a JWKS document; :class:`AuthUnavailable` if none."""
    try:
        parsed = json.loads(document)
    except ValueError:
        raise AuthUnavailable() from None
    entries = parsed.get("keys") if isinstance(parsed, dict) else None
    if not isinstance(entries, list):
        raise AuthUnavailable()
    usable: list[dict[str, Any]] = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("kty") not in _KEY_TYPES:
            continue
        if entry.get("use", "sig") != "sig":
            continue
        try:
            # Parsed once here only to drop broken entries early; the key is rebuilt
            # per algorithm on use.
            jwt.PyJWK(entry)
        except (jwt.PyJWTError, ValueError, TypeError):
            continue
        usable.append(entry)
    if not usable:
        raise AuthUnavailable()
    return _KeySet(usable)


def _claim(claims: Mapping[str, Any], name: str) -> object:
    """A claim by literal name, else by dotted path (`o.id` reads ``{"o": {"id": ...}}``)."""
    # The literal name wins so that namespaced claims such as
    # `https://example.com/org` (dots and all) still work.
    if name in claims:
        return claims[name]
    node: object = claims
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _refusal(error: jwt.PyJWTError) -> Unauthenticated:
    """A safe, specific message for a PyJWT verification error."""
    if isinstance(error, jwt.ExpiredSignatureError):
        return Unauthenticated("the session token has expired")
    if isinstance(error, jwt.ImmatureSignatureError):
        return Unauthenticated("the session token is not valid yet")
    if isinstance(error, jwt.MissingRequiredClaimError):
        if error.claim == "iss":
            return Unauthenticated("the token was not issued by the expected issuer")
        if error.claim == "aud":
            return Unauthenticated("the token is not meant for this service (audience)")
        return Unauthenticated(f'the token has no "{error.claim}" claim')
    if isinstance(error, jwt.InvalidIssuerError):
        return Unauthenticated("the token was not issued by the expected issuer")
    if isinstance(error, jwt.InvalidAudienceError):
        return Unauthenticated("the token is not meant for this service (audience)")
    if isinstance(error, jwt.InvalidSignatureError):
        return Unauthenticated("the token's signature is invalid")
    if isinstance(error, jwt.InvalidAlgorithmError | jwt.InvalidKeyError):
        return Unauthenticated("the token's algorithm does not match its signing key")
    if isinstance(error, jwt.InvalidIssuedAtError):
        return Unauthenticated('the token\'s "iat" claim is malformed')
    if isinstance(error, jwt.DecodeError):
        return Unauthenticated("the bearer token is not a well-formed JWT")
    return Unauthenticated("the session token is invalid")
