"""What goes wrong in a step: the failures of each kind of step, retries and their backoff."""

from __future__ import annotations

import random
from dataclasses import dataclass

from stepgraph.demo.sampling import between

MAX_RETRIES = 3
"""How often a step retries a transient failure before it gives up."""

# Share of the executions of retrying kinds of steps that succeed only after a retry or two.
_RETRY_RATE = 0.05


@dataclass(frozen=True, slots=True)
class Failure:
    """One way a step fails, with the error message it leaves behind."""

    message: str
    # Transient failures are retried up to the limit before the step gives up.
    retryable: bool
    # Timeouts take exactly their limit per attempt.
    attempt_ms: int | None = None
    # Whether the provider still billed the tokens of the last attempt.
    billed: bool = False


@dataclass(frozen=True, slots=True)
class FailureModes:
    """The ways one kind of step fails."""

    failures: tuple[Failure, ...]
    # Whether this kind of step retries at all: some kinds only fail for good.
    retried: bool

    def draw(self, rng: random.Random, fail_rate: float) -> tuple[Failure | None, int]:
        """Whether an execution fails (and how), and how many retries it takes."""
        if rng.random() < fail_rate:
            failure = rng.choice(self.failures)
            return failure, MAX_RETRIES if failure.retryable else 0
        if self.retried and rng.random() < _RETRY_RATE:
            return None, 1 if rng.random() < 0.75 else 2
        return None, 0


def _modes(*failures: Failure) -> FailureModes:
    return FailureModes(failures, any(f.retryable for f in failures))


FAILURES: dict[str, FailureModes] = {
    "api-call": _modes(
        Failure("Rate limited by upstream (HTTP 429)", True),
        Failure("Upstream returned HTTP 502 Bad Gateway", True),
        Failure("Upstream returned HTTP 503 Service Unavailable", True),
        Failure("Request timed out after 30000 ms", True, attempt_ms=30_000),
        Failure("Connection reset by peer", True),
        Failure("HTTP 401 Unauthorized: API key rejected by upstream", False),
        Failure("HTTP 422 Unprocessable Entity: field 'email' is invalid", False),
    ),
    "prompt": _modes(
        Failure("Model provider rate limit exceeded (HTTP 429)", True),
        Failure("Model provider overloaded (HTTP 529), try again later", True),
        Failure("Request to model provider timed out after 60000 ms", True, attempt_ms=60_000),
        Failure("Model output did not match the expected JSON schema", True, billed=True),
        Failure("Context length exceeded: 131072 tokens requested, model limit is 128000", False),
        Failure("Content filtered by the provider's safety system", False, billed=True),
    ),
    "embedding": _modes(
        Failure("Model provider rate limit exceeded (HTTP 429)", True),
        Failure("Input exceeds the embedding model limit of 8192 tokens", False),
    ),
    "transform": _modes(
        Failure("KeyError: 'total_amount' not found in step input", False),
        Failure("Cannot parse date '31/02/2026' with format 'DD/MM/YYYY'", False),
    ),
    "code": _modes(
        Failure("TypeError: Cannot read properties of undefined (reading 'email')", False),
        Failure("Execution exceeded the 10000 ms time limit", False, attempt_ms=10_000),
        Failure("ReferenceError: lineItems is not defined", False),
    ),
    "condition": _modes(Failure("Condition references unknown variable 'riskScore'", False)),
    "webhook": _modes(
        Failure("Webhook endpoint returned HTTP 500 Internal Server Error", True),
        Failure("Webhook delivery timed out after 15000 ms", True, attempt_ms=15_000),
        Failure("TLS handshake with webhook endpoint failed: certificate has expired", False),
    ),
    "email": _modes(
        Failure("Mail provider rate limit exceeded (HTTP 429)", True),
        Failure("Mail provider rejected recipient: mailbox does not exist (550 5.1.1)", False),
    ),
}
"""The failure modes of each kind of step, by step type."""


def with_retries_ms(
    rng: random.Random, attempt_ms: float, failure: Failure | None, retries: int
) -> int:
    """How long a step takes in all, given how long one attempt of it takes."""
    duration: float
    if failure is not None and failure.attempt_ms is not None:
        duration = failure.attempt_ms * (retries + 1) + between(rng, 5, 80)
    else:
        duration = attempt_ms * (retries + 1)
    # Exponential backoff between attempts: 1 s, 2 s, 4 s, plus jitter.
    for attempt in range(retries):
        duration += 1000 * 2**attempt + between(rng, 0, 250)
    return max(1, int(duration))
