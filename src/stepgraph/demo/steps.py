"""The steps of a flow: what each kind of step is configured with and how it behaves.

One constructor per kind of step fills in the configuration the contract shows
(``stepConfig``) and the kind's typical duration, spread and failure rate, so that a flow
declares only what is particular to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stepgraph.demo.failures import MAX_RETRIES


@dataclass(frozen=True, slots=True)
class Step:
    """One step of a flow; ``since`` and ``until`` say which versions of the flow have it."""

    step_id: str
    name: str
    kind: str
    # Median duration (for prompts: time to first token) and lognormal spread.
    median_ms: float
    sigma: float
    fail_rate: float
    # Output preview template over the record's fields.
    output: str
    config: dict[str, Any] | None = None
    model: str | None = None
    prompt: str | None = None
    # Median tokens of an attached document, on top of the prompt text itself.
    context_tokens: int = 0
    completion_tokens: int = 0
    # A flag of the record decided by an earlier condition: skipped unless it is "true".
    skip_unless: str | None = None
    # Indexes into the flow's versions that have this step: since <= index < until.
    since: int = 0
    until: int | None = None


def api_call_step(
    step_id: str,
    name: str,
    *,
    url: str,
    output: str,
    method: str = "POST",
    median_ms: float = 350,
    fail_rate: float = 0.01,
    **extra: Any,
) -> Step:
    """An HTTP call to a service of the organization or a third party."""
    config = {"method": method, "url": url, "timeoutMs": 30_000, "maxRetries": MAX_RETRIES}
    return Step(step_id, name, "api-call", median_ms, 0.8, fail_rate, output, config, **extra)


def prompt_step(
    step_id: str,
    name: str,
    *,
    model: str,
    prompt: str,
    output: str,
    completion: int,
    context: int = 0,
    temperature: float = 0.2,
    **extra: Any,
) -> Step:
    """A call to a language model with a prompt template over the record's fields."""
    config = {
        "model": model,
        "temperature": temperature,
        "maxTokens": completion * 4,
        "responseFormat": "json" if output.startswith("{") else "text",
    }
    return Step(
        step_id, name, "prompt", 550, 0.5, 0.008, output, config, model, prompt,
        context_tokens=context, completion_tokens=completion, **extra,
    )  # fmt: skip


def embedding_step(step_id: str, name: str, *, model: str, text: str, **extra: Any) -> Step:
    """A call to an embedding model with a text template over the record's fields."""
    config = {"model": model, "dimensions": 1536}
    return Step(
        step_id, name, "embedding", 140, 0.6, 0.004, '{{"dimensions":1536}}', config, model, text,
        context_tokens=350, **extra,
    )  # fmt: skip


def local_step(
    kind: str,
    step_id: str,
    name: str,
    *,
    output: str,
    median_ms: float,
    config: dict[str, Any] | None = None,
    **extra: Any,
) -> Step:
    """A step run by the platform itself: a ``transform``, ``condition`` or ``code`` step."""
    sigma = {"transform": 0.6, "condition": 0.5, "code": 1.0}[kind]
    return Step(step_id, name, kind, median_ms, sigma, 0.002, output, config, **extra)


def condition_step(step_id: str, name: str, *, flag: str, expression: str) -> Step:
    """A condition whose result is the record's ``flag``; later steps may depend on it."""
    output = f'{{{{"result":{{{flag}}},"expression":"{expression}"}}}}'
    return local_step("condition", step_id, name, output=output, median_ms=3,
                      config={"expression": expression})  # fmt: skip


def webhook_step(step_id: str, name: str, *, url: str, **extra: Any) -> Step:
    """A signed notification posted to a webhook."""
    config = {"url": url, "signing": "hmac-sha256", "timeoutMs": 15_000}
    output = '{{"delivered":true,"status":200}}'
    return Step(step_id, name, "webhook", 400, 0.9, 0.012, output, config, **extra)


def email_step(step_id: str, name: str, *, template: str, **extra: Any) -> Step:
    """An email from a template, handed to the mail provider."""
    config = {"provider": "postmark", "template": template}
    output = '{{"messageId":"msg_{message_ref}","status":"queued"}}'
    return Step(step_id, name, "email", 600, 0.6, 0.006, output, config, **extra)
