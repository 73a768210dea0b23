"""Demo step results: a deterministic, realistic stream of flow runs.

``generate_demo_step_results(rows, seed=...)`` yields contract-shaped step
results (the REST row: camelCase keys in the contract's order, JSON-ready
values) for four organizations and their flows over the six weeks before
:data:`DEMO_ANCHOR`. The stream depends only on the seed, so the first ``n``
rows of a longer stream are exactly the rows of a shorter one.

How the data is shaped:

* Jobs are either batches (one flow over many records, a few records at a
  time) or single runs (one record, no batch). Several jobs are in progress at
  once and their runs are interleaved, so any prefix spans several
  organizations and flows. Flow popularity and batch sizes are skewed, so a few
  flows hold most rows.
* A run executes its flow version's steps in order. A step's row is created
  when the step is enqueued and it starts a little later, so createdAt <=
  startedAt <= completedAt. A failed step stops the run and the remaining
  steps are skipped; condition steps skip the step they guard.
* The anchor is "now": whatever would still be going on then is ``running`` or
  ``pending``; cancelled batches and runs leave ``cancelled`` rows behind.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, islice
from typing import Any

from stepgraph.records import format_cost
from stepgraph.store.types import COST_SCALE

DEMO_SEED = 7
"""The seed of the demo data loaded by ``stepgraph seed --demo`` and ``make serve``."""

DEMO_ANCHOR = datetime(2026, 10, 31, tzinfo=UTC)
"""The fixed "now" of the demo data: every timestamp lies in the six weeks before it."""

_WINDOW_DAYS = 42
_MINUTE_MS = 60_000
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_ANCHOR_MS = int((DEMO_ANCHOR - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1000
_WINDOW_START_MS = _ANCHOR_MS - _WINDOW_DAYS * _DAY_MS
_NAIVE_EPOCH = datetime(1970, 1, 1)

# Jobs in progress at once; their runs are interleaved in the stream.
_ACTIVE_JOBS = 8
# The first jobs are far more often still in flight at the anchor, or cancelled, so
# that even a small demo shows every status (running and pending ones at the top of
# a newest-first page).
_EARLY_JOBS = 60
_EARLY_LIVE_RATE = 0.2
_LIVE_RATE = 0.01
_EARLY_CANCEL_RATE = 0.12
_BATCH_CANCEL_RATE = 0.025
_RUN_CANCEL_RATE = 0.015
_EDITOR_RUN_RATE = 0.05
_RERUN_RATE = 0.3
_RECENT_RECORDS = 32
_RETRY_RATE = 0.05
_MAX_RETRIES = 3
_STALL_RATE = 0.01
_THROTTLE_RATE = 0.15
_THROTTLE_MU = math.log(2500)
_MAX_STALL = 60.0


def _between(rng: random.Random, low: int, high: int) -> int:
    """A whole number in [low, high); several times faster than ``randrange``."""
    return low + int(rng.random() * (high - low))


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _flag(value: bool) -> str:
    # Spelled as in JSON, so that output previews read as JSON and conditions can test it.
    return "true" if value else "false"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _table(text: str) -> tuple[tuple[str, ...], ...]:
    """Rows of a fixed-width table: columns are separated by two or more spaces."""
    return tuple(tuple(re.split(r"\s{2,}", line.strip())) for line in text.strip().splitlines())


# --- Models and prices -------------------------------------------------------------------------

# US dollars per million tokens (input, output), as the providers publish them, and
# generation speed in milliseconds per completion token.
_MODELS = _table("""
    gpt-4o-mini             0.15    0.60    9
    gpt-4o                  2.50    10.00   14
    claude-3-5-sonnet       3.00    15.00   16
    claude-3-5-haiku        0.80    4.00    8
    gemini-1.5-flash        0.075   0.30    5
    text-embedding-3-small  0.02    0       0
""")
_PRICES: dict[str, tuple[Decimal, Decimal]] = {
    model: (Decimal(i).scaleb(-6), Decimal(o).scaleb(-6)) for model, i, o, _ in _MODELS
}
_MS_PER_TOKEN: dict[str, float] = {model: float(ms) for model, _, _, ms in _MODELS}
_COST_QUANTUM = Decimal(1).scaleb(-COST_SCALE)


def _cost(model: str, prompt_tokens: int, completion_tokens: int) -> str:
    price_in, price_out = _PRICES[model]
    cost = (price_in * prompt_tokens + price_out * completion_tokens).quantize(_COST_QUANTUM)
    return format_cost(cost)


# --- Failures ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Failure:
    message: str
    # Transient failures are retried up to the limit before the step gives up.
    retryable: bool
    # Timeouts take exactly their limit per attempt.
    attempt_ms: int | None = None
    # Whether the provider still billed the tokens of the last attempt.
    billed: bool = False


_FAILURES: dict[str, tuple[_Failure, ...]] = {
    "api-call": (
        _Failure("Rate limited by upstream (HTTP 429)", True),
        _Failure("Upstream returned HTTP 502 Bad Gateway", True),
        _Failure("Upstream returned HTTP 503 Service Unavailable", True),
        _Failure("Request timed out after 30000 ms", True, attempt_ms=30_000),
        _Failure("Connection reset by peer", True),
        _Failure("HTTP 401 Unauthorized: API key rejected by upstream", False),
        _Failure("HTTP 422 Unprocessable Entity: field 'email' is invalid", False),
    ),
    "prompt": (
        _Failure("Model provider rate limit exceeded (HTTP 429)", True),
        _Failure("Model provider overloaded (HTTP 529), try again later", True),
        _Failure("Request to model provider timed out after 60000 ms", True, attempt_ms=60_000),
        _Failure("Model output did not match the expected JSON schema", True, billed=True),
        _Failure("Context length exceeded: 131072 tokens requested, model limit is 128000", False),
        _Failure("Content filtered by the provider's safety system", False, billed=True),
    ),
    "embedding": (
        _Failure("Model provider rate limit exceeded (HTTP 429)", True),
        _Failure("Input exceeds the embedding model limit of 8192 tokens", False),
    ),
    "transform": (
        _Failure("KeyError: 'total_amount' not found in step input", False),
        _Failure("Cannot parse date '31/02/2026' with format 'DD/MM/YYYY'", False),
    ),
    "code": (
        _Failure("TypeError: Cannot read properties of undefined (reading 'email')", False),
        _Failure("Execution exceeded the 10000 ms time limit", False, attempt_ms=10_000),
        _Failure("ReferenceError: lineItems is not defined", False),
    ),
    "condition": (_Failure("Condition references unknown variable 'riskScore'", False),),
    "webhook": (
        _Failure("Webhook endpoint returned HTTP 500 Internal Server Error", True),
        _Failure("Webhook delivery timed out after 15000 ms", True, attempt_ms=15_000),
        _Failure("TLS handshake with webhook endpoint failed: certificate has expired", False),
    ),
    "email": (
        _Failure("Mail provider rate limit exceeded (HTTP 429)", True),
        _Failure("Mail provider rejected recipient: mailbox does not exist (550 5.1.1)", False),
    ),
}


# --- Steps -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Step:
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


def _api(
    step_id: str,
    name: str,
    *,
    url: str,
    output: str,
    method: str = "POST",
    median_ms: float = 350,
    fail_rate: float = 0.01,
    **extra: Any,
) -> _Step:
    config = {"method": method, "url": url, "timeoutMs": 30_000, "maxRetries": _MAX_RETRIES}
    return _Step(step_id, name, "api-call", median_ms, 0.8, fail_rate, output, config, **extra)


def _prompt(
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
) -> _Step:
    config = {
        "model": model,
        "temperature": temperature,
        "maxTokens": completion * 4,
        "responseFormat": "json" if output.startswith("{") else "text",
    }
    return _Step(
        step_id, name, "prompt", 550, 0.5, 0.008, output, config, model, prompt,
        context_tokens=context, completion_tokens=completion, **extra,
    )  # fmt: skip


def _embedding(step_id: str, name: str, *, model: str, text: str, **extra: Any) -> _Step:
    config = {"model": model, "dimensions": 1536}
    return _Step(
        step_id, name, "embedding", 140, 0.6, 0.004, '{{"dimensions":1536}}', config, model, text,
        context_tokens=350, **extra,
    )  # fmt: skip


def _local(
    kind: str,
    step_id: str,
    name: str,
    *,
    output: str,
    median_ms: float,
    config: dict[str, Any] | None = None,
    **extra: Any,
) -> _Step:
    sigma = {"transform": 0.6, "condition": 0.5, "code": 1.0}[kind]
    return _Step(step_id, name, kind, median_ms, sigma, 0.002, output, config, **extra)


def _condition(step_id: str, name: str, *, flag: str, expression: str) -> _Step:
    output = f'{{{{"result":{{{flag}}},"expression":"{expression}"}}}}'
    return _local("condition", step_id, name, output=output, median_ms=3,
                  config={"expression": expression})  # fmt: skip


def _webhook(step_id: str, name: str, *, url: str, **extra: Any) -> _Step:
    config = {"url": url, "signing": "hmac-sha256", "timeoutMs": 15_000}
    output = '{{"delivered":true,"status":200}}'
    return _Step(step_id, name, "webhook", 400, 0.9, 0.012, output, config, **extra)


def _email(step_id: str, name: str, *, template: str, **extra: Any) -> _Step:
    config = {"provider": "postmark", "template": template}
    output = '{{"messageId":"msg_{message_ref}","status":"queued"}}'
    return _Step(step_id, name, "email", 600, 0.6, 0.006, output, config, **extra)


# --- Records -----------------------------------------------------------------------------------

_FIRST_NAMES = _words(
    "Jane John Priya Omar Maria Wei Aisha Lukas Sofia Mateo Chloe Kenji Amara Noah Elena Arjun "
    "Fatima Liam Hana Diego Olivia Tomasz Zara Ethan Ingrid Kwame Lucia Ravi Mei Samuel"
)
_LAST_NAMES = _words(
    "Doe Smith Shah Haddad Garcia Chen Khan Mueller Rossi Silva Martin Tanaka Okafor Johnson "
    "Petrova Patel Nguyen Brown Kim Lopez Novak Andersen Mensah Dubois Kowalski Ali Cohen "
    "Fischer Santos Walker"
)
_COMPANIES = _table("""
    Globex                globex.com
    Initech               initech.io
    Umbrella Logistics    umbrella-log.com
    Stark Components      starkcomponents.com
    Wayne Shipping        wayneshipping.com
    Hooli                 hooli.xyz
    Vandelay Industries   vandelay.com
    Soylent Foods         soylent.co
    Tyrell Systems        tyrell.systems
    Cyberdyne Robotics    cyberdyne.ai
    Wonka Confections     wonka.com
    Acme Supplies         acme-supplies.com
    Massive Dynamic       massivedynamic.com
    Pied Piper            piedpiper.net
    Oscorp Materials      oscorp.com
    Bluth Company         bluthco.com
""")
_LEGAL_FORMS = ("Inc.", "Ltd", "GmbH", "B.V.", "LLC", "S.A.")
# Repeated entries weight the draw.
_COUNTRIES = _table("""
    US  USD
    US  USD
    US  USD
    GB  GBP
    DE  EUR
    FR  EUR
    NL  EUR
    ES  EUR
    IN  INR
    BR  BRL
    CA  CAD
    AU  AUD
    SG  SGD
""")
_TICKETS = _table("""
    Cannot reset password          account_access
    Invoice charged twice          billing
    Export to CSV fails            bug
    SSO login loop                 account_access
    Webhook not firing             integration
    Request for refund             billing
    API rate limit too low         limits
    Dashboard loads slowly         performance
    Cannot add team member         account_access
    Data missing after import      bug
    Change billing email           billing
    2FA code not received          account_access
    Feature request: dark mode     feature_request
    Slack integration broken       integration
    Charts show wrong timezone     bug
""")
_MERCHANTS = _table("""
    Uber                   travel
    Delta Air Lines        travel
    Lufthansa              travel
    Marriott               lodging
    Hilton                 lodging
    Starbucks              meals
    Pret A Manger          meals
    Amazon Web Services    software
    Figma                  software
    Zoom                   software
    Staples                office_supplies
    FedEx                  shipping
    WeWork                 workspace
""")
_PRODUCTS = _table("""
    Trail Running Shoe            footwear
    Merino Wool Sweater           apparel
    Insulated Water Bottle        outdoor
    Noise-Cancelling Headphones   electronics
    Ceramic Pour-Over Set         kitchen
    Standing Desk Converter       office
    Waterproof Hiking Jacket      apparel
    Cast Iron Skillet             kitchen
    Wireless Charging Pad         electronics
    Cork Yoga Mat                 fitness
    Leather Weekender Bag         accessories
    Ultralight Tent               outdoor
""")
_CONTRACTS = (
    "Master Services Agreement", "Data Processing Addendum", "Reseller Agreement", "Mutual NDA",
    "Statement of Work", "Software License Agreement",
)  # fmt: skip
_JOB_TITLES = (
    "Head of Operations", "VP Finance", "CTO", "Procurement Manager",
    "Director of Customer Success", "Founder",
)  # fmt: skip
_SUBSCRIPTIONS = ("starter", "starter", "business", "business", "business", "enterprise")
_TIERS = ("free", "pro", "pro", "business", "enterprise")
_ID_DOCUMENTS = ("passport", "driving_licence", "national_id", "residence_permit")
_SIGNUP_SOURCES = ("signup_form", "signup_form", "partner_api", "branch", "mobile_app")
_CHANNELS = ("email", "email", "chat", "chat", "web_form", "phone")
_LANGUAGES = ("en", "en", "en", "en", "en", "de", "fr", "es", "pt")
_PRIORITIES = ("low", "normal", "normal", "high", "urgent")
_RISK_LEVELS = ("low", "low", "low", "low", "medium", "medium", "high")
_SENTIMENTS = ("negative", "negative", "mixed", "neutral")


def _person(rng: random.Random) -> dict[str, Any]:
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    company, domain = rng.choice(_COMPANIES)
    country, currency = rng.choice(_COUNTRIES)
    return {
        "first_name": first,
        "full_name": f"{first} {last}",
        "email": f"{first}.{last}@{domain}".lower(),
        "company": company,
        "domain": domain,
        "country": country,
        "currency": currency,
    }


def _onboarding_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    risk = rng.choice(_RISK_LEVELS)
    score = rng.uniform(0.72, 0.97) if risk == "high" else rng.uniform(0.02, 0.6)
    ctx.update(
        source=rng.choice(_SIGNUP_SOURCES),
        plan=rng.choice(_SUBSCRIPTIONS),
        id_document=rng.choice(_ID_DOCUMENTS),
        risk_level=risk,
        risk_score=f"{score:.2f}",
        manual_review=_flag(risk == "high"),
    )
    return ctx


def _loan_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    income = _between(rng, 28, 240) * 1000
    debt = int(income * rng.uniform(0.05, 0.55))
    ctx.update(
        application=f"LA-2026-{_between(rng, 10000, 100000)}",
        amount=_between(rng, 5, 400) * 1000,
        income=income,
        monthly_debt=debt // 12,
        dti=f"{debt / income:.2f}",
        documents=_between(rng, 2, 9),
        term_months=rng.choice((12, 24, 36, 60, 120, 360)),
    )
    return ctx


def _fraud_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    score = rng.betavariate(2, 5)
    ctx.update(
        alert=f"FA-{_between(rng, 10000, 100000)}",
        card_last4=f"{_between(rng, 0, 10000):04d}",
        amount=f"{math.exp(rng.gauss(4.5, 1.2)):.2f}",
        merchant=rng.choice(_MERCHANTS)[0],
        fraud_score=f"{score:.2f}",
        escalate=_flag(score > 0.55),
        transactions=_between(rng, 20, 400),
    )
    return ctx


def _invoice_record(rng: random.Random) -> dict[str, Any]:
    company, domain = rng.choice(_COMPANIES)
    country, currency = rng.choice(_COUNTRIES)
    total = math.exp(rng.gauss(7.0, 1.3))
    return {
        "invoice": f"INV-2026-{_between(rng, 1, 10000):04d}",
        "vendor": f"{company} {rng.choice(_LEGAL_FORMS)}",
        "domain": domain,
        "country": country,
        "currency": currency,
        "total": f"{total:.2f}",
        "pages": rng.choice((1, 1, 1, 2, 2, 3, 5)),
        "line_items": _between(rng, 1, 25),
        "po_number": f"PO-{_between(rng, 100000, 1000000)}",
        "needs_approval": _flag(total > 5000),
        "source": rng.choice(("ap_inbox", "ap_inbox", "upload", "edi")),
    }


def _expense_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    merchant, category = rng.choice(_MERCHANTS)
    amount = math.exp(rng.gauss(3.8, 1.1))
    ctx.update(
        expense=f"EXP-{_between(rng, 10000, 100000)}",
        merchant=merchant,
        category=category,
        amount=f"{amount:.2f}",
        violation=_flag(amount > 400 and category in {"meals", "lodging"}),
        cost_center=f"CC-{_between(rng, 100, 1000)}",
    )
    return ctx


def _vendor_record(rng: random.Random) -> dict[str, Any]:
    company, domain = rng.choice(_COMPANIES)
    country, _ = rng.choice(_COUNTRIES)
    return {
        "vendor": f"{company} {rng.choice(_LEGAL_FORMS)}",
        "domain": domain,
        "country": country,
        "registry_id": f"{country}{_between(rng, 10_000_000, 100_000_000)}",
        "risk_level": rng.choice(_RISK_LEVELS),
        "mentions": _between(rng, 0, 12),
    }


def _ticket_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    subject, intent = rng.choice(_TICKETS)
    tier, priority = rng.choice(_TIERS), rng.choice(_PRIORITIES)
    ctx.update(
        ticket=_between(rng, 40000, 100000),
        subject=subject,
        intent=intent,
        tier=tier,
        channel=rng.choice(_CHANNELS),
        language=rng.choice(_LANGUAGES),
        priority=priority,
        similar=_between(rng, 0, 6),
        escalate=_flag(priority == "urgent" or tier == "enterprise"),
    )
    return ctx


def _survey_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    ctx.update(
        rating=rng.choice((1, 2, 2, 3, 3)),
        sentiment=rng.choice(_SENTIMENTS),
        survey=f"SRV-{_between(rng, 100000, 1000000)}",
        tier=rng.choice(_TIERS),
    )
    return ctx


def _account_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    ctx.update(
        seats=_between(rng, 5, 900),
        usage_change=f"{rng.uniform(-65, 20):.1f}",
        churn_risk=rng.choice(_RISK_LEVELS),
        arr=_between(rng, 4, 600) * 1000,
        renewal=f"2027-{_between(rng, 1, 13):02d}-01",
        tier=rng.choice(_TIERS[2:]),
    )
    return ctx


def _lead_record(rng: random.Random) -> dict[str, Any]:
    ctx = _person(rng)
    ctx.update(
        title=rng.choice(_JOB_TITLES),
        employees=rng.choice((12, 45, 120, 350, 1200, 5400)),
        lead_score=_between(rng, 5, 99),
        campaign=rng.choice(("webinar_q4", "ebook_ai_ops", "paid_search", "referral")),
    )
    return ctx


def _product_record(rng: random.Random) -> dict[str, Any]:
    product, category = rng.choice(_PRODUCTS)
    return {
        "product": product,
        "category": category,
        "sku": f"SKU-{_between(rng, 10000, 100000)}",
        "price": f"{_between(rng, 15, 400)}.{rng.choice(('00', '95', '99'))}",
        "color": rng.choice(("black", "navy", "olive", "sand", "charcoal", "red")),
        "words": _between(rng, 80, 220),
    }


def _contract_record(rng: random.Random) -> dict[str, Any]:
    company, domain = rng.choice(_COMPANIES)
    return {
        "counterparty": company,
        "domain": domain,
        "contract": rng.choice(_CONTRACTS),
        "pages": _between(rng, 4, 60),
        "clauses": _between(rng, 12, 140),
        "risky": _between(rng, 0, 7),
    }


# --- Organizations and flows -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoOrganization:
    """One organization of the demo data: its people and the flows it owns."""

    id: str
    name: str
    user_ids: tuple[str, ...]
    flow_ids: tuple[str, ...]


_ORGANIZATIONS = _table("""
    org_2b7e41c9d05a  Northwind Financial
    org_8f14c3a09e27  Ledgerly
    org_5c9d2e7b1f40  Helpwise
    org_d3a6f0b8c412  Brightcart
""")
# The first person of each organization starts the most work (see _USER_CUM).
_USERS: dict[str, tuple[str, ...]] = {
    "org_2b7e41c9d05a": (
        "user_8c21f0a3b7d4", "user_41e9d27a0c6f", "user_f07b3c58e912", "user_6a0d94e1c2b5",
    ),
    "org_8f14c3a09e27": (
        "user_3d7a9b1e5f02", "user_c94e0f61a8b3", "user_0b5f2d8c7e16", "user_a7193e4d2c50",
        "user_5e8c1b0f9a74",
    ),
    "org_5c9d2e7b1f40": ("user_e2a05d7c9b31", "user_7f4b8e2a0d96", "user_19c6a3f0e5b8"),
    "org_d3a6f0b8c412": (
        "user_b8e7c2a91f04", "user_2c0f5a8d6e73", "user_d4f19b7e3a08", "user_68a2e0c4f1b9",
    ),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Batching:
    # Share of jobs that are batches; a batch has size * Pareto(alpha) records, up to cap,
    # processed by `workers` records at a time.
    share: float
    size: int
    alpha: float
    cap: int
    workers: int

    def expected_runs(self) -> float:
        # E[min(cap, size * X)] for X ~ Pareto(alpha); single runs count one.
        k = self.cap / self.size
        batch = self.size * (self.alpha - float(k ** (1 - self.alpha))) / (self.alpha - 1)
        return self.share * batch + (1 - self.share)


@dataclass(frozen=True, slots=True)
class _Flow:
    flow_id: str
    organization_id: str
    # Relative share of all rows.
    share: float
    # (version id, first day it ran, counted from the window start; negative: before it).
    versions: tuple[tuple[str, int], ...]
    make_record: Callable[[random.Random], dict[str, Any]]
    record_name: str
    # Record fields kept as recordMetadata, for this share of records.
    metadata: tuple[str, ...]
    metadata_rate: float
    batching: _Batching
    steps: tuple[_Step, ...]


_NORTHWIND, _LEDGERLY, _HELPWISE, _BRIGHTCART = (org_id for org_id, _ in _ORGANIZATIONS)

_FLOWS: tuple[_Flow, ...] = (
    _Flow(
        flow_id="flow_customer_onboarding",
        organization_id=_NORTHWIND,
        share=14,
        versions=(("version_2.0.3", -30), ("version_2.1.0", 12), ("version_2.2.0", 33)),
        make_record=_onboarding_record,
        record_name="Customer Onboarding - {full_name}",
        metadata=("source", "country", "plan"),
        metadata_rate=0.8,
        batching=_Batching(share=0.55, size=8, alpha=1.4, cap=800, workers=6),
        steps=(
            _api(
                "step_001",
                "Validate Customer Data",
                url="https://api.northwind.example/v1/customers/validate",
                output='{{"valid":true,"errors":[]}}',
                median_ms=220,
            ),
            _api(
                "step_002",
                "Verify Identity Document",
                url="https://api.idverify.example/v3/checks",
                output='{{"result":"clear","document":"{id_document}","country":"{country}"}}',
                median_ms=1800,
                fail_rate=0.015,
            ),
            _api(
                "step_003",
                "Screen Sanctions Lists",
                url="https://api.sanctions.example/v2/screen",
                output='{{"matches":0,"lists":["OFAC","EU","UN"]}}',
                median_ms=640,
            ),
            _prompt(
                "step_004",
                "Assess Onboarding Risk",
                model="gpt-4o",
                prompt="You are a KYC analyst. Assess the onboarding risk of {full_name} "
                "({email}), country {country}, plan {plan}, verified with a {id_document}. "
                "Answer with JSON: riskLevel (low, medium, high) and score (0-1).",
                output='{{"riskLevel":"{risk_level}","score":{risk_score}}}',
                completion=90,
                context=600,
            ),
            _condition(
                "step_005",
                "Needs Manual Review?",
                flag="manual_review",
                expression="steps.step_004.riskLevel == 'high'",
            ),
            _api(
                "step_008",
                "Create Compliance Review Task",
                url="https://api.northwind.example/v1/compliance/tasks",
                output='{{"taskId":"task_{task_ref}","queue":"compliance"}}',
                median_ms=300,
                skip_unless="manual_review",
                since=1,
            ),
            _email("step_006", "Send Welcome Email", template="welcome"),
            _api(
                "step_007",
                "Provision Account",
                url="https://api.northwind.example/v1/accounts",
                output='{{"accountId":"acct_{ref}","plan":"{plan}"}}',
                median_ms=480,
                since=2,
            ),
        ),
    ),
    _Flow(
        flow_id="flow_loan_document_review",
        organization_id=_NORTHWIND,
        share=2.5,
        versions=(("version_1.0.0", -50), ("version_1.1.0", 20)),
        make_record=_loan_record,
        record_name="Loan Application {application} - {full_name}",
        metadata=("country", "term_months"),
        metadata_rate=0.6,
        batching=_Batching(share=0.8, size=5, alpha=1.6, cap=300, workers=4),
        steps=(
            _api(
                "step_001",
                "Fetch Application Documents",
                url="https://api.northwind.example/v1/loans/documents",
                output='{{"documents":{documents},"application":"{application}"}}',
                method="GET",
                median_ms=900,
            ),
            _prompt(
                "step_002",
                "Extract Income Details",
                model="claude-3-5-sonnet",
                prompt="Extract the applicant's annual income and monthly debt payments from the "
                "{documents} attached documents of application {application} for {full_name}. "
                "Respond with JSON.",
                output='{{"annualIncome":{income},"monthlyDebt":{monthly_debt}}}',
                completion=160,
                context=5200,
            ),
            _local(
                "code",
                "step_003",
                "Compute Debt-to-Income Ratio",
                output='{{"dti":{dti}}}',
                median_ms=40,
                config={"runtime": "python3.12", "entrypoint": "dti.py"},
            ),
            _prompt(
                "step_004",
                "Summarize for Underwriter",
                model="claude-3-5-sonnet",
                prompt="Write a five-sentence summary for an underwriter of application "
                "{application}: amount {amount} {currency}, term {term_months} months, annual "
                "income {income}, debt-to-income {dti}.",
                output="{full_name} requests {amount} {currency} over {term_months} months; "
                "DTI {dti}.",
                completion=220,
                temperature=0.4,
                since=1,
            ),
            _webhook(
                "step_005",
                "Post to Underwriting Queue",
                url="https://hooks.northwind.example/underwriting",
            ),
        ),
    ),
    _Flow(
        flow_id="flow_fraud_alert_review",
        organization_id=_NORTHWIND,
        share=4,
        versions=(("version_0.9.2", -20), ("version_1.0.0", 26)),
        make_record=_fraud_record,
        record_name="Fraud Alert {alert} - Card ending {card_last4}",
        metadata=("country", "merchant"),
        metadata_rate=0.9,
        batching=_Batching(share=0.1, size=5, alpha=2.0, cap=100, workers=8),
        steps=(
            _api(
                "step_001",
                "Load Transaction History",
                url="https://api.northwind.example/v1/cards/transactions",
                output='{{"transactions":{transactions},"days":90}}',
                method="GET",
                median_ms=520,
            ),
            _local(
                "transform",
                "step_002",
                "Build Feature Vector",
                output='{{"features":42,"merchant":"{merchant}"}}',
                median_ms=18,
            ),
            _local(
                "code",
                "step_003",
                "Score Transaction Risk",
                output='{{"score":{fraud_score}}}',
                median_ms=95,
                config={"runtime": "python3.12", "model": "fraud-gbm-2026-09"},
            ),
            _prompt(
                "step_004",
                "Explain Alert",
                model="gpt-4o-mini",
                prompt="Explain in two sentences for a fraud analyst why the payment of {amount} "
                "at {merchant} on the card ending {card_last4} scored {fraud_score}.",
                output="Card ending {card_last4}: {amount} at {merchant}, score {fraud_score}.",
                completion=70,
                context=900,
            ),
            _condition(
                "step_005",
                "Escalate to Fraud Team?",
                flag="escalate",
                expression="steps.step_003.score > 0.55",
            ),
            _webhook(
                "step_006",
                "Notify Fraud Team",
                url="https://hooks.slack.example/fraud-alerts",
                skip_unless="escalate",
            ),
        ),
    ),
    _Flow(
        flow_id="flow_invoice_extraction",
        organization_id=_LEDGERLY,
        share=28,
        versions=(("version_3.4.1", -40), ("version_3.5.0", 8), ("version_4.0.0", 29)),
        make_record=_invoice_record,
        record_name="Invoice {invoice}",
        metadata=("vendor", "pages", "source"),
        metadata_rate=0.75,
        batching=_Batching(share=0.9, size=12, alpha=1.25, cap=2000, workers=10),
        steps=(
            _api(
                "step_001",
                "Fetch Invoice PDF",
                url="https://api.ledgerly.example/v2/inbox/attachments",
                output='{{"file":"{invoice}.pdf","pages":{pages}}}',
                method="GET",
                median_ms=280,
            ),
            _api(
                "step_002",
                "Run OCR",
                url="https://ocr.ledgerly.example/v1/documents",
                output='{{"pages":{pages},"confidence":0.97}}',
                median_ms=2400,
            ),
            # Version 4.0.0 moved extraction to another model: a new step, same name.
            *(
                _prompt(
                    step_id,
                    "Extract Invoice Fields",
                    model=model,
                    prompt="Extract vendor, invoice number, issue and due dates, currency, "
                    "total and line items from the OCR text of invoice {invoice} ({pages} "
                    "pages) sent by {vendor}. Respond with JSON matching the invoice schema.",
                    output='{{"vendor":"{vendor}","invoiceNumber":"{invoice}","total":{total},'
                    '"currency":"{currency}","lineItems":{line_items}}}',
                    completion=250,
                    context=1400,
                    since=since,
                    until=until,
                )
                for step_id, model, since, until in (
                    ("step_003", "gpt-4o-mini", 0, 2),
                    ("step_009", "claude-3-5-haiku", 2, None),
                )
            ),
            _local(
                "code",
                "step_004",
                "Validate Totals",
                output='{{"valid":true,"sum":{total},"lineItems":{line_items}}}',
                median_ms=35,
                config={"runtime": "node20", "entrypoint": "validateTotals.js"},
            ),
            _api(
                "step_005",
                "Match Purchase Order",
                url="https://erp.ledgerly.example/api/purchase-orders/match",
                output='{{"matched":true,"po":"{po_number}"}}',
                median_ms=700,
                since=1,
            ),
            _condition(
                "step_006",
                "Requires Approval?",
                flag="needs_approval",
                expression="steps.step_003.total > 5000",
            ),
            _api(
                "step_008",
                "Request Controller Approval",
                url="https://api.ledgerly.example/v2/approvals",
                output='{{"approvalId":"apr_{ref}","approver":"controller"}}',
                median_ms=260,
                skip_unless="needs_approval",
            ),
            _webhook("step_007", "Push to ERP", url="https://erp.ledgerly.example/hooks/invoices"),
        ),
    ),
    _Flow(
        flow_id="flow_expense_categorization",
        organization_id=_LEDGERLY,
        share=6,
        versions=(("version_1.2.0", -35), ("version_1.3.0", 17)),
        make_record=_expense_record,
        record_name="Expense {expense} - {merchant}",
        metadata=("cost_center", "country"),
        metadata_rate=0.5,
        batching=_Batching(share=0.7, size=10, alpha=1.5, cap=600, workers=8),
        steps=(
            _local(
                "transform",
                "step_001",
                "Normalize Merchant Name",
                output='{{"merchant":"{merchant}"}}',
                median_ms=12,
            ),
            _prompt(
                "step_002",
                "Categorize Expense",
                model="gemini-1.5-flash",
                prompt="Classify this expense into one accounting category: {amount} {currency} "
                "at {merchant}, submitted by {full_name} for cost center {cost_center}.",
                output='{{"category":"{category}","confidence":0.93}}',
                completion=30,
                context=150,
            ),
            _local(
                "code",
                "step_003",
                "Check Policy Limits",
                output='{{"violation":{violation}}}',
                median_ms=25,
                config={"runtime": "python3.12", "policy": "travel-2026"},
            ),
            _condition(
                "step_004",
                "Policy Violation?",
                flag="violation",
                expression="steps.step_003.violation",
            ),
            _email(
                "step_005",
                "Notify Manager",
                template="expense-violation",
                skip_unless="violation",
            ),
            _api(
                "step_006",
                "Sync to Ledger",
                url="https://api.ledgerly.example/v2/journal-entries",
                output='{{"entryId":"je_{ref}","status":"posted"}}',
                median_ms=410,
                since=1,
            ),
        ),
    ),
    _Flow(
        flow_id="flow_vendor_risk_check",
        organization_id=_LEDGERLY,
        share=1.5,
        versions=(("version_0.3.0", -10),),
        make_record=_vendor_record,
        record_name="Vendor - {vendor}",
        metadata=("country",),
        metadata_rate=0.4,
        batching=_Batching(share=0.5, size=5, alpha=1.8, cap=120, workers=3),
        steps=(
            _api(
                "step_001",
                "Look Up Company Registry",
                url="https://api.opencorp.example/v1/companies/search",
                output='{{"registryId":"{registry_id}","status":"active"}}',
                method="GET",
                median_ms=1100,
            ),
            _api(
                "step_002",
                "Search Adverse Media",
                url="https://api.newsscan.example/v2/search",
                output='{{"mentions":{mentions}}}',
                method="GET",
                median_ms=2600,
                fail_rate=0.03,
            ),
            _prompt(
                "step_003",
                "Summarize Vendor Risk",
                model="claude-3-5-sonnet",
                prompt="Summarize the onboarding risk of vendor {vendor} ({country}, registry "
                "{registry_id}) from the registry record and {mentions} media mentions.",
                output='{{"riskLevel":"{risk_level}","mentions":{mentions}}}',
                completion=300,
                context=3000,
            ),
            _api(
                "step_004",
                "Store Risk Report",
                url="https://api.ledgerly.example/v2/vendors/risk-reports",
                output='{{"reportId":"rpt_{ref}"}}',
                median_ms=260,
            ),
        ),
    ),
    _Flow(
        flow_id="flow_support_triage",
        organization_id=_HELPWISE,
        share=20,
        versions=(("version_1.8.0", -25), ("version_1.9.0", 15), ("version_1.9.1", 24)),
        make_record=_ticket_record,
        record_name="Ticket #{ticket} - {subject}",
        metadata=("channel", "tier", "language"),
        metadata_rate=0.9,
        batching=_Batching(share=0.15, size=5, alpha=1.7, cap=400, workers=6),
        steps=(
            _api(
                "step_001",
                "Fetch Ticket",
                url="https://helpwise.example/api/v2/tickets",
                output='{{"ticket":{ticket},"channel":"{channel}"}}',
                method="GET",
                median_ms=180,
            ),
            _local(
                "code",
                "step_002",
                "Detect Language",
                output='{{"language":"{language}"}}',
                median_ms=30,
                config={"runtime": "python3.12", "library": "lingua"},
            ),
            _embedding(
                "step_007",
                "Embed Ticket",
                model="text-embedding-3-small",
                text="Ticket #{ticket}: {subject}",
                since=1,
            ),
            _api(
                "step_008",
                "Find Similar Tickets",
                url="https://vectors.helpwise.example/v1/query",
                output='{{"matches":{similar}}}',
                median_ms=90,
                since=1,
            ),
            _prompt(
                "step_003",
                "Classify Intent and Priority",
                model="gpt-4o-mini",
                prompt="Classify support ticket #{ticket} from a {tier} customer. Subject: "
                "{subject}. Return JSON with intent, priority (low, normal, high, urgent) and "
                "language.",
                output='{{"intent":"{intent}","priority":"{priority}","language":"{language}"}}',
                completion=40,
                context=450,
            ),
            _prompt(
                "step_004",
                "Draft Reply",
                model="claude-3-5-sonnet",
                prompt="Draft a friendly reply in '{language}' to {full_name} about '{subject}' "
                "(intent {intent}). Use the knowledge base articles provided.",
                output="Hi {first_name}, thanks for reaching out about '{subject}'. ...",
                completion=230,
                context=1800,
                temperature=0.6,
            ),
            _condition(
                "step_005",
                "Escalate to Tier 2?",
                flag="escalate",
                expression="priority == 'urgent' or tier == 'enterprise'",
            ),
            _api(
                "step_006",
                "Update Helpdesk",
                url="https://helpwise.example/api/v2/tickets/update",
                output='{{"ticket":{ticket},"status":"pending_agent"}}',
                method="PATCH",
                median_ms=210,
            ),
        ),
    ),
    _Flow(
        flow_id="flow_csat_followup",
        organization_id=_HELPWISE,
        share=3,
        versions=(("version_1.0.2", -60),),
        make_record=_survey_record,
        record_name="Survey Response - {full_name} ({rating}/5)",
        metadata=("tier",),
        metadata_rate=0.6,
        batching=_Batching(share=0.9, size=15, alpha=1.6, cap=500, workers=8),
        steps=(
            _api(
                "step_001",
                "Load Survey Response",
                url="https://helpwise.example/api/v2/surveys",
                output='{{"survey":"{survey}","rating":{rating}}}',
                method="GET",
                median_ms=160,
            ),
            _prompt(
                "step_002",
                "Analyze Sentiment",
                model="claude-3-5-haiku",
                prompt="Analyze the sentiment and main complaint of survey {survey} from "
                "{full_name} (rating {rating}/5). Respond with JSON.",
                output='{{"sentiment":"{sentiment}","topics":["response_time"]}}',
                completion=60,
                context=300,
            ),
            _prompt(
                "step_003",
                "Draft Follow-up",
                model="gpt-4o-mini",
                prompt="Write a short, sincere follow-up to {full_name}, a {tier} customer who "
                "rated us {rating}/5 with {sentiment} sentiment.",
                output="Hi {first_name}, we're sorry your experience fell short ...",
                completion=150,
                temperature=0.7,
            ),
            _email("step_004", "Send Follow-up Email", template="csat-followup"),
        ),
    ),
    _Flow(
        flow_id="flow_churn_risk_review",
        organization_id=_HELPWISE,
        share=3,
        versions=(("version_2.0.0", -14), ("version_2.1.0", 31)),
        make_record=_account_record,
        record_name="Account - {company}",
        metadata=("tier", "seats", "renewal"),
        metadata_rate=1.0,
        batching=_Batching(share=0.95, size=20, alpha=1.5, cap=600, workers=5),
        steps=(
            _api(
                "step_001",
                "Pull Usage Metrics",
                url="https://analytics.helpwise.example/v1/accounts/usage",
                output='{{"seats":{seats},"days":90}}',
                method="GET",
                median_ms=1300,
            ),
            _local(
                "transform",
                "step_002",
                "Aggregate 90-Day Trends",
                output='{{"usageChange":{usage_change}}}',
                median_ms=45,
            ),
            _prompt(
                "step_003",
                "Assess Churn Risk",
                model="gpt-4o",
                prompt="Assess the churn risk of {company} ({seats} seats, {arr} ARR, renewal "
                "{renewal}) given a usage change of {usage_change}% over 90 days.",
                output='{{"churnRisk":"{churn_risk}","drivers":["usage_decline"]}}',
                completion=180,
                context=1200,
            ),
            _webhook(
                "step_004",
                "Notify Account Manager",
                url="https://hooks.slack.example/account-health",
                since=1,
            ),
        ),
    ),
    _Flow(
        flow_id="flow_lead_enrichment",
        organization_id=_BRIGHTCART,
        share=7,
        versions=(("version_1.4.0", -45), ("version_1.5.0", 21)),
        make_record=_lead_record,
        record_name="Lead - {full_name} ({company})",
        metadata=("campaign", "country"),
        metadata_rate=0.7,
        batching=_Batching(share=0.6, size=10, alpha=1.5, cap=700, workers=6),
        steps=(
            _api(
                "step_001",
                "Enrich Company",
                url="https://api.clearbit.example/v2/companies/find",
                output='{{"domain":"{domain}","employees":{employees}}}',
                method="GET",
                median_ms=650,
                fail_rate=0.02,
            ),
            _api(
                "step_002",
                "Find Contact Profile",
                url="https://api.peopledata.example/v5/person/enrich",
                output='{{"title":"{title}","found":true}}',
                median_ms=900,
                fail_rate=0.02,
            ),
            _prompt(
                "step_003",
                "Score Lead",
                model="gpt-4o-mini",
                prompt="Score this lead from 0 to 100 for fit: {full_name}, {title} at {company} "
                "({employees} employees, {country}), from campaign {campaign}.",
                output='{{"score":{lead_score},"fit":"good"}}',
                completion=45,
                context=500,
            ),
            _prompt(
                "step_004",
                "Write Intro Email",
                model="claude-3-5-sonnet",
                prompt="Write a short, personal intro email to {full_name}, {title} at "
                "{company}, referencing the {campaign} campaign.",
                output="Subject: Quick idea for {company} / Hi {first_name}, ...",
                completion=210,
                temperature=0.8,
            ),
            _api(
                "step_005",
                "Create CRM Contact",
                url="https://crm.brightcart.example/api/contacts",
                output='{{"contactId":"003{ref}","owner":"sdr"}}',
                median_ms=380,
                since=1,
            ),
        ),
    ),
    _Flow(
        flow_id="flow_product_descriptions",
        organization_id=_BRIGHTCART,
        share=10,
        versions=(("version_0.7.0", -30), ("version_0.8.0", 10)),
        make_record=_product_record,
        record_name="Product {sku} - {product}",
        metadata=("category", "color"),
        metadata_rate=1.0,
        batching=_Batching(share=0.95, size=25, alpha=1.3, cap=1500, workers=12),
        steps=(
            _api(
                "step_001",
                "Load Product Attributes",
                url="https://pim.brightcart.example/api/products",
                output='{{"sku":"{sku}","category":"{category}","color":"{color}"}}',
                method="GET",
                median_ms=150,
            ),
            _prompt(
                "step_002",
                "Generate Description",
                model="gpt-4o",
                prompt="Write a {words}-word product description for the {product} ({category}, "
                "color {color}, {price} USD) in Brightcart's brand voice.",
                output="The {product} in {color} is built for ...",
                completion=320,
                context=700,
                temperature=0.8,
            ),
            _prompt(
                "step_003",
                "Check Brand Guidelines",
                model="gpt-4o-mini",
                prompt="Check the product description of {sku} against the brand guidelines. "
                "Respond with JSON: compliant and issues.",
                output='{{"compliant":true,"issues":[]}}',
                completion=50,
                context=1100,
            ),
            _prompt(
                "step_004",
                "Translate to German",
                model="gemini-1.5-flash",
                prompt="Translate the product description of {product} ({sku}) into German, "
                "keeping product names unchanged.",
                output="Der {product} in {color} ...",
                completion=360,
                context=400,
                since=1,
            ),
            _webhook(
                "step_005",
                "Publish to Storefront",
                url="https://shop.brightcart.example/hooks/products",
            ),
        ),
    ),
    _Flow(
        flow_id="flow_contract_clause_review",
        organization_id=_BRIGHTCART,
        share=1,
        versions=(("version_0.2.1", -5),),
        make_record=_contract_record,
        record_name="Contract - {counterparty} {contract}",
        metadata=("pages",),
        metadata_rate=0.8,
        batching=_Batching(share=0.3, size=3, alpha=2.0, cap=40, workers=2),
        steps=(
            _api(
                "step_001",
                "Fetch Contract PDF",
                url="https://docs.brightcart.example/api/files",
                output='{{"pages":{pages}}}',
                method="GET",
                median_ms=450,
            ),
            _local(
                "code",
                "step_002",
                "Split into Clauses",
                output='{{"clauses":{clauses}}}',
                median_ms=220,
                config={"runtime": "python3.12", "entrypoint": "split.py"},
            ),
            _prompt(
                "step_003",
                "Review Risky Clauses",
                model="claude-3-5-sonnet",
                prompt="Review the {clauses} clauses of the {contract} with {counterparty} "
                "({pages} pages) against our playbook. Flag risky clauses with reasons.",
                output='{{"risky":{risky},"clauses":{clauses}}}',
                completion=900,
                context=14000,
            ),
            _prompt(
                "step_004",
                "Summarize Redlines",
                model="claude-3-5-sonnet",
                prompt="Summarize the proposed redlines for the {contract} with {counterparty} "
                "for the legal team.",
                output="{risky} clauses need redlines: limitation of liability, ...",
                completion=400,
                context=2500,
            ),
            _webhook("step_005", "Notify Legal", url="https://hooks.slack.example/legal-review"),
        ),
    ),
)

DEMO_ORGANIZATIONS: tuple[DemoOrganization, ...] = tuple(
    DemoOrganization(
        org_id,
        name,
        _USERS[org_id],
        tuple(f.flow_id for f in _FLOWS if f.organization_id == org_id),
    )
    for org_id, name in _ORGANIZATIONS
)
"""The organizations of the demo data; every flow belongs to exactly one of them."""


# --- Precomputed plans and weights -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _PlanStep:
    step: _Step
    order: int
    variables: tuple[str, ...]
    failures: tuple[_Failure, ...]
    # Whether transient errors of this kind of step are retried.
    retries: bool
    mu: float
    ms_per_token: float
    # Tokens of the system prompt wrapped around the template.
    prompt_overhead: int
    timeout_ms: int | None
    throttled: bool


def _variables(template: str | None) -> tuple[str, ...]:
    if template is None:
        return ()
    names = (name for _, name, _, _ in string.Formatter().parse(template) if name)
    return tuple(dict.fromkeys(names))


def _plan(flow: _Flow, version: int) -> tuple[_PlanStep, ...]:
    steps = [s for s in flow.steps if s.since <= version and (s.until is None or version < s.until)]
    plan = []
    for order, step in enumerate(steps, 1):
        variables = _variables(step.prompt)
        failures = _FAILURES[step.kind]
        plan.append(
            _PlanStep(
                step=step,
                order=order,
                variables=variables,
                failures=failures,
                retries=any(f.retryable for f in failures),
                mu=math.log(step.median_ms),
                ms_per_token=_MS_PER_TOKEN.get(step.model or "", 0.0),
                prompt_overhead=40 + 20 * len(variables),
                timeout_ms=(step.config or {}).get("timeoutMs"),
                throttled=step.model is not None,
            )
        )
    return tuple(plan)


def _typical_run_ms(plan: tuple[_PlanStep, ...]) -> int:
    # Medians plus the hand-off between steps: good enough to place live and cancelled jobs.
    return int(
        sum(p.step.median_ms + p.step.completion_tokens * p.ms_per_token + 150 for p in plan)
    )


_PLANS = tuple(tuple(_plan(flow, v) for v in range(len(flow.versions))) for flow in _FLOWS)
_RUN_MS = tuple(tuple(_typical_run_ms(plan) for plan in plans) for plans in _PLANS)
_FLOW_INDEXES = range(len(_FLOWS))
# A flow's share is of rows; a job of a flow with big batches and many steps yields many rows.
_FLOW_CUM = tuple(
    accumulate(
        flow.share / (flow.batching.expected_runs() * len(plans[-1]))
        for flow, plans in zip(_FLOWS, _PLANS, strict=True)
    )
)
_USER_CUM = {
    org_id: tuple(accumulate(1.0 / (rank + 1) for rank in range(len(users))))
    for org_id, users in _USERS.items()
}
_VERSION_BY_DAY = tuple(
    tuple(
        max(i for i, (_, first) in enumerate(flow.versions) if first <= day)
        for day in range(_WINDOW_DAYS)
    )
    for flow in _FLOWS
)


def _hour_weight(hour: int) -> float:
    day, hour_of_day = divmod(hour, 24)
    weekday = (DEMO_ANCHOR - timedelta(days=_WINDOW_DAYS - day)).weekday()
    # Customers in Europe and the Americas: busy from 07:00 to 22:00 UTC, quiet at night.
    daytime = 1.0 if 7 <= hour_of_day <= 21 else 0.15
    weekend = 0.3 if weekday >= 5 else 1.0
    # Usage grows over the weeks, as a product finding its users does.
    growth = 1.0 + 0.6 * day / _WINDOW_DAYS
    return daytime * weekend * growth


_HOURS = range(_WINDOW_DAYS * 24)
_HOUR_CUM = tuple(accumulate(_hour_weight(hour) for hour in _HOURS))


# --- Rendering ---------------------------------------------------------------------------------

_UUID_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _uuid(rng: random.Random) -> str:
    # A version-4 UUID from the seeded generator: the public API shows UUID ids.
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_MINUTES: dict[int, str] = {}


def _iso(ms: int) -> str:
    # The store's own rendering (microseconds only when non-zero), so rows round-trip
    # unchanged. Steps of a run share their minute, so the minute's text is cached.
    minute, rest = divmod(ms, _MINUTE_MS)
    prefix = _MINUTES.get(minute)
    if prefix is None:
        if len(_MINUTES) > 50_000:
            _MINUTES.clear()
        prefix = (_NAIVE_EPOCH + timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:")
        _MINUTES[minute] = prefix
    seconds, millis = divmod(rest, 1000)
    if millis:
        return f"{prefix}{seconds:02d}.{millis:03d}000Z"
    return f"{prefix}{seconds:02d}Z"


def _day_stamp(ms: int) -> str:
    return _iso(ms)[:10].replace("-", "")


def _lognormal(rng: random.Random, mu: float, sigma: float) -> float:
    # gauss() is markedly faster than lognormvariate() and just as deterministic.
    return math.exp(mu + sigma * rng.gauss(0.0, 1.0))


# --- Simulation --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Record:
    record_id: str | None
    name: str | None
    metadata: dict[str, Any] | None
    ctx: dict[str, Any]


@dataclass(frozen=True, slots=True)
class _Run:
    # The run's fields that sit between id and stepId in every row, in contract order.
    base: dict[str, Any]
    record: _Record
    plan: tuple[_PlanStep, ...]
    enqueued: int
    start: int
    # The anchor, or the moment the run was cancelled (then cancel_message is set).
    cutoff: int
    cancel_message: str | None


def _step_ms(
    rng: random.Random, p: _PlanStep, completion: int, failure: _Failure | None, retries: int
) -> int:
    duration = _lognormal(rng, p.mu, p.step.sigma)
    if completion:
        duration += completion * p.ms_per_token * _lognormal(rng, 0.0, 0.25)
    # Rare stalls (cold starts, slow upstreams) give the distribution its long tail; a
    # configured timeout ends an attempt that would take longer (as a failure, below).
    if rng.random() < _STALL_RATE:
        duration *= 1.0 + 4.0 * min(rng.paretovariate(1.2), _MAX_STALL)
        if p.timeout_ms is not None:
            duration = min(duration, p.timeout_ms * 0.98)
    if failure is not None and failure.attempt_ms is not None:
        duration = failure.attempt_ms * (retries + 1) + _between(rng, 5, 80)
    else:
        duration *= retries + 1
    # Exponential backoff between attempts: 1 s, 2 s, 4 s, plus jitter.
    for attempt in range(retries):
        duration += 1000 * 2**attempt + _between(rng, 0, 250)
    return max(1, int(duration))


def _run_rows(rng: random.Random, run: _Run) -> tuple[list[dict[str, Any]], int]:
    """The rows of one run, and when it finished (``cutoff`` if it was cut short)."""
    rows: list[dict[str, Any]] = []
    ctx, metadata, cutoff = run.record.ctx, run.record.metadata, run.cutoff
    created, start, end = run.enqueued, run.start, run.start
    failed_at: int | None = None
    for p in run.plan:
        step = p.step
        if p.throttled and failed_at is None and rng.random() < _THROTTLE_RATE:
            # Waiting for a slot under the model provider's rate limit.
            start += int(_lognormal(rng, _THROTTLE_MU, 0.8))
        started_at = completed_at = output = error = prompt_text = cost = None
        duration = prompt_tokens = completion_tokens = total_tokens = None
        variables: dict[str, Any] | None = None
        retries = 0
        stop = False
        created_at = created
        if failed_at is not None:
            status, created_at = "skipped", failed_at
        elif start >= cutoff:
            # Enqueued, not yet started when the anchor (or the cancellation) came.
            status = "pending" if run.cancel_message is None else "cancelled"
            error, stop = run.cancel_message, True
        elif step.skip_unless is not None and ctx[step.skip_unless] != "true":
            status = "skipped"
            start = created + _between(rng, 1, 40)
        else:
            failure: _Failure | None = None
            if rng.random() < step.fail_rate:
                failure = rng.choice(p.failures)
                retries = _MAX_RETRIES if failure.retryable else 0
            elif p.retries and rng.random() < _RETRY_RATE:
                retries = 1 if rng.random() < 0.75 else 2
            completion = 0
            if step.prompt is not None:
                prompt_text = step.prompt.format_map(ctx)
                variables = {name: ctx[name] for name in p.variables}
                prompt_tokens = p.prompt_overhead + len(prompt_text) // 4
                if step.context_tokens:
                    prompt_tokens += int(_lognormal(rng, math.log(step.context_tokens), 0.5))
                if step.completion_tokens:
                    median = math.log(step.completion_tokens)
                    completion = max(1, int(_lognormal(rng, median, 0.45)))
            duration = _step_ms(rng, p, completion, failure, retries)
            step_end = start + duration
            started_at = _iso(start)
            if step_end > cutoff:
                stop, prompt_tokens = True, None
                if run.cancel_message is None:
                    status, duration = "running", None
                else:
                    status, error, duration = "cancelled", run.cancel_message, cutoff - start
                    completed_at = _iso(cutoff)
            else:
                completed_at = _iso(step_end)
                if failure is None:
                    status, output = "completed", step.output.format_map(ctx)
                else:
                    status, error, failed_at = "failed", failure.message, step_end
                    if not failure.billed:
                        prompt_tokens = None
                if prompt_tokens is not None and step.model is not None:
                    completion_tokens = completion
                    total_tokens = prompt_tokens + completion
                    cost = _cost(step.model, prompt_tokens, completion)
                created = end = step_end
                start = step_end + _between(rng, 5, 300)
        rows.append(
            {
                "id": _uuid(rng),
                **run.base,
                "stepId": step.step_id,
                "stepType": step.kind,
                "stepName": step.name,
                "order": p.order,
                "status": status,
                "startedAt": started_at,
                "completedAt": completed_at,
                "durationMs": duration,
                "outputPreview": output,
                "createdAt": _iso(created_at),
                # Copies: a caller editing one row must not change another.
                "recordMetadata": dict(metadata) if metadata is not None else None,
                "stepConfig": dict(step.config) if step.config is not None else None,
                "inputVariables": variables,
                "resolvedPrompt": prompt_text,
                "modelUsed": step.model,
                "promptTokens": prompt_tokens,
                "completionTokens": completion_tokens,
                "totalTokens": total_tokens,
                "estimatedCost": cost,
                "errorMessage": error,
                "retryCount": retries,
            }
        )
        if stop:
            return rows, cutoff
    return rows, end


@dataclass(frozen=True, slots=True)
class _Job:
    flow: int
    version: int
    user_id: str
    batch_id: str | None
    size: int
    workers: int
    submitted: int
    cutoff: int
    cancel_message: str | None


class _Stream:
    """The endless, seed-determined sequence of jobs, interleaved run by run."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.jobs = 0
        self.batches_per_day: dict[str, int] = {}
        self.recent: dict[int, list[_Record]] = {}

    def rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        active = [self.runs(self.job()) for _ in range(_ACTIVE_JOBS)]
        while True:
            slot = _between(rng, 0, _ACTIVE_JOBS)
            run = next(active[slot], None)
            if run is None:
                active[slot] = self.runs(self.job())
            else:
                yield from run

    def job(self) -> _Job:
        rng = self.rng
        early = self.jobs < _EARLY_JOBS
        self.jobs += 1
        f = rng.choices(_FLOW_INDEXES, cum_weights=_FLOW_CUM)[0]
        flow = _FLOWS[f]
        users = _USERS[flow.organization_id]
        user_id = rng.choices(users, cum_weights=_USER_CUM[flow.organization_id])[0]
        batching = flow.batching
        batch = rng.random() < batching.share
        size = min(batching.cap, int(batching.size * rng.paretovariate(batching.alpha)))
        size = size if batch else 1
        workers = min(size, batching.workers)
        live = rng.random() < (_EARLY_LIVE_RATE if early else _LIVE_RATE)
        hour = _HOURS[-1] if live else rng.choices(_HOURS, cum_weights=_HOUR_CUM)[0]
        version = _VERSION_BY_DAY[f][hour // 24]
        expected = -(-size // workers) * _RUN_MS[f][version]
        if live:
            # Submitted recently enough that part of it is still going on at the anchor.
            submitted = _ANCHOR_MS - int(expected * rng.uniform(0.05, 0.9))
        else:
            submitted = _WINDOW_START_MS + hour * _HOUR_MS + _between(rng, 0, _HOUR_MS)
        cutoff, cancel_message = _ANCHOR_MS, None
        cancel_rate = _BATCH_CANCEL_RATE if batch else _RUN_CANCEL_RATE
        if rng.random() < (_EARLY_CANCEL_RATE if early else cancel_rate):
            cutoff = min(cutoff, submitted + int(expected * rng.uniform(0.1, 0.85)))
            cancel_message = "Batch cancelled by user" if batch else "Run cancelled by user"
        batch_id = None
        if batch:
            day = _day_stamp(submitted)
            number = self.batches_per_day[day] = self.batches_per_day.get(day, 0) + 1
            batch_id = f"batch_{day}_{number:03d}"
        return _Job(f, version, user_id, batch_id, size, workers, submitted, cutoff, cancel_message)

    def runs(self, job: _Job) -> Iterator[list[dict[str, Any]]]:
        rng = self.rng
        flow = _FLOWS[job.flow]
        plan = _PLANS[job.flow][job.version]
        # When each worker is next free; a batch enqueues all its records at submission.
        free = [job.submitted] * job.workers
        for _ in range(job.size):
            record = self.record(job.flow, single=job.batch_id is None)
            worker = free.index(min(free))
            start = free[worker] + _between(rng, 20, 1500)
            base = {
                "userId": job.user_id,
                "organizationId": flow.organization_id,
                "batchExecutionId": job.batch_id,
                "executionSessionId": f"session_{_day_stamp(start)}_{_hex(rng, 12)}",
                "flowId": flow.flow_id,
                "flowVersionId": flow.versions[job.version][0],
                "recordId": record.record_id,
                "recordName": record.name,
            }
            run = _Run(base, record, plan, job.submitted, start, job.cutoff, job.cancel_message)
            rows, free[worker] = _run_rows(rng, run)
            yield rows

    def record(self, f: int, *, single: bool) -> _Record:
        rng = self.rng
        recent = self.recent.setdefault(f, [])
        if single and recent and rng.random() < _RERUN_RATE:
            # Someone runs the flow again on a record it has already seen.
            return rng.choice(recent)
        flow = _FLOWS[f]
        ctx = flow.make_record(rng)
        # Ids of what the run creates elsewhere, for output previews.
        ctx.update(ref=_hex(rng, 10), task_ref=_hex(rng, 10), message_ref=_hex(rng, 16))
        if single and rng.random() < _EDITOR_RUN_RATE:
            # A test run from the flow editor: sample input, no stored record.
            return _Record(None, None, None, ctx)
        metadata = None
        if rng.random() < flow.metadata_rate:
            metadata = {key: ctx[key] for key in flow.metadata}
        record = _Record(f"record_{_hex(rng, 12)}", flow.record_name.format_map(ctx), metadata, ctx)
        if len(recent) < _RECENT_RECORDS:
            recent.append(record)
        else:
            recent[_between(rng, 0, _RECENT_RECORDS)] = record
        return record


def generate_demo_step_results(rows: int, *, seed: int = 0) -> Iterator[dict[str, Any]]:
    """Yield exactly ``rows`` demo step results in the contract's JSON shape.

    The same ``(rows, seed)`` always gives the same rows, and a shorter stream is
    a prefix of a longer one with the same seed. Rows are made one run at a time,
    so millions can be streamed into a store in constant memory. Every row passes
    :func:`stepgraph.records.parse_step_result` and renders back to itself through
    :func:`stepgraph.records.step_result_json`. The demo store uses :data:`DEMO_SEED`.
    """
    if rows < 0:
        raise ValueError(f"rows must be zero or more, got {rows}")
    return islice(_Stream(seed).rows(), rows)
