"""The records flows run on: people, invoices, tickets, products and more.

Each ``*_record`` function draws one record as the fields that its flow's record name,
prompts and output previews are templates over; the word lists below are what those
fields are drawn from. Repeated entries in a list weight the draw.
"""

from __future__ import annotations

import math
import random
from typing import Any

from stepgraph.demo.sampling import between
from stepgraph.demo.text_tables import table, words


def _json_flag(value: bool) -> str:
    # Spelled as in JSON, so that output previews read as JSON and conditions can test it.
    return "true" if value else "false"


_FIRST_NAMES = words(
    "Jane John Priya Omar Maria Wei Aisha Lukas Sofia Mateo Chloe Kenji Amara Noah Elena Arjun "
    "Fatima Liam Hana Diego Olivia Tomasz Zara Ethan Ingrid Kwame Lucia Ravi Mei Samuel"
)
_LAST_NAMES = words(
    "Doe Smith Shah Haddad Garcia Chen Khan Mueller Rossi Silva Martin Tanaka Okafor Johnson "
    "Petrova Patel Nguyen Brown Kim Lopez Novak Andersen Mensah Dubois Kowalski Ali Cohen "
    "Fischer Santos Walker"
)
_COMPANIES = table("""
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
_COUNTRIES = table("""
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
_TICKETS = table("""
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
_MERCHANTS = table("""
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
_PRODUCTS = table("""
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


def onboarding_record(rng: random.Random) -> dict[str, Any]:
    """A new customer signing up with a bank, with the outcome of their risk assessment."""
    ctx = _person(rng)
    risk = rng.choice(_RISK_LEVELS)
    score = rng.uniform(0.72, 0.97) if risk == "high" else rng.uniform(0.02, 0.6)
    ctx.update(
        source=rng.choice(_SIGNUP_SOURCES),
        plan=rng.choice(_SUBSCRIPTIONS),
        id_document=rng.choice(_ID_DOCUMENTS),
        risk_level=risk,
        risk_score=f"{score:.2f}",
        manual_review=_json_flag(risk == "high"),
    )
    return ctx


def loan_record(rng: random.Random) -> dict[str, Any]:
    """A loan application, with the applicant's income and debt."""
    ctx = _person(rng)
    income = between(rng, 28, 240) * 1000
    debt = int(income * rng.uniform(0.05, 0.55))
    ctx.update(
        application=f"LA-2026-{between(rng, 10000, 100000)}",
        amount=between(rng, 5, 400) * 1000,
        income=income,
        monthly_debt=debt // 12,
        dti=f"{debt / income:.2f}",
        documents=between(rng, 2, 9),
        term_months=rng.choice((12, 24, 36, 60, 120, 360)),
    )
    return ctx


def fraud_record(rng: random.Random) -> dict[str, Any]:
    """A card payment that raised a fraud alert, with its fraud score."""
    ctx = _person(rng)
    score = rng.betavariate(2, 5)
    ctx.update(
        alert=f"FA-{between(rng, 10000, 100000)}",
        card_last4=f"{between(rng, 0, 10000):04d}",
        amount=f"{math.exp(rng.gauss(4.5, 1.2)):.2f}",
        merchant=rng.choice(_MERCHANTS)[0],
        fraud_score=f"{score:.2f}",
        escalate=_json_flag(score > 0.55),
        transactions=between(rng, 20, 400),
    )
    return ctx


def invoice_record(rng: random.Random) -> dict[str, Any]:
    """A supplier invoice received by accounts payable."""
    company, domain = rng.choice(_COMPANIES)
    country, currency = rng.choice(_COUNTRIES)
    total = math.exp(rng.gauss(7.0, 1.3))
    return {
        "invoice": f"INV-2026-{between(rng, 1, 10000):04d}",
        "vendor": f"{company} {rng.choice(_LEGAL_FORMS)}",
        "domain": domain,
        "country": country,
        "currency": currency,
        "total": f"{total:.2f}",
        "pages": rng.choice((1, 1, 1, 2, 2, 3, 5)),
        "line_items": between(rng, 1, 25),
        "po_number": f"PO-{between(rng, 100000, 1000000)}",
        "needs_approval": _json_flag(total > 5000),
        "source": rng.choice(("ap_inbox", "ap_inbox", "upload", "edi")),
    }


def expense_record(rng: random.Random) -> dict[str, Any]:
    """An employee's expense claim, and whether it breaks the expense policy."""
    ctx = _person(rng)
    merchant, category = rng.choice(_MERCHANTS)
    amount = math.exp(rng.gauss(3.8, 1.1))
    ctx.update(
        expense=f"EXP-{between(rng, 10000, 100000)}",
        merchant=merchant,
        category=category,
        amount=f"{amount:.2f}",
        violation=_json_flag(amount > 400 and category in {"meals", "lodging"}),
        cost_center=f"CC-{between(rng, 100, 1000)}",
    )
    return ctx


def vendor_record(rng: random.Random) -> dict[str, Any]:
    """A supplier to be checked before it is onboarded."""
    company, domain = rng.choice(_COMPANIES)
    country, _ = rng.choice(_COUNTRIES)
    return {
        "vendor": f"{company} {rng.choice(_LEGAL_FORMS)}",
        "domain": domain,
        "country": country,
        "registry_id": f"{country}{between(rng, 10_000_000, 100_000_000)}",
        "risk_level": rng.choice(_RISK_LEVELS),
        "mentions": between(rng, 0, 12),
    }


def ticket_record(rng: random.Random) -> dict[str, Any]:
    """A customer's support ticket, with its intent and priority."""
    ctx = _person(rng)
    subject, intent = rng.choice(_TICKETS)
    tier, priority = rng.choice(_TIERS), rng.choice(_PRIORITIES)
    ctx.update(
        ticket=between(rng, 40000, 100000),
        subject=subject,
        intent=intent,
        tier=tier,
        channel=rng.choice(_CHANNELS),
        language=rng.choice(_LANGUAGES),
        priority=priority,
        similar=between(rng, 0, 6),
        escalate=_json_flag(priority == "urgent" or tier == "enterprise"),
    )
    return ctx


def survey_record(rng: random.Random) -> dict[str, Any]:
    """A low customer satisfaction survey response that calls for a follow-up."""
    ctx = _person(rng)
    ctx.update(
        rating=rng.choice((1, 2, 2, 3, 3)),
        sentiment=rng.choice(_SENTIMENTS),
        survey=f"SRV-{between(rng, 100000, 1000000)}",
        tier=rng.choice(_TIERS),
    )
    return ctx


def account_record(rng: random.Random) -> dict[str, Any]:
    """A customer account up for renewal, with its usage trend."""
    ctx = _person(rng)
    ctx.update(
        seats=between(rng, 5, 900),
        usage_change=f"{rng.uniform(-65, 20):.1f}",
        churn_risk=rng.choice(_RISK_LEVELS),
        arr=between(rng, 4, 600) * 1000,
        renewal=f"2027-{between(rng, 1, 13):02d}-01",
        tier=rng.choice(_TIERS[2:]),
    )
    return ctx


def lead_record(rng: random.Random) -> dict[str, Any]:
    """A sales lead from a marketing campaign."""
    ctx = _person(rng)
    ctx.update(
        title=rng.choice(_JOB_TITLES),
        employees=rng.choice((12, 45, 120, 350, 1200, 5400)),
        lead_score=between(rng, 5, 99),
        campaign=rng.choice(("webinar_q4", "ebook_ai_ops", "paid_search", "referral")),
    )
    return ctx


def product_record(rng: random.Random) -> dict[str, Any]:
    """A product of an online shop that needs a description."""
    product, category = rng.choice(_PRODUCTS)
    return {
        "product": product,
        "category": category,
        "sku": f"SKU-{between(rng, 10000, 100000)}",
        "price": f"{between(rng, 15, 400)}.{rng.choice(('00', '95', '99'))}",
        "color": rng.choice(("black", "navy", "olive", "sand", "charcoal", "red")),
        "words": between(rng, 80, 220),
    }


def contract_record(rng: random.Random) -> dict[str, Any]:
    """A contract with a counterparty, up for legal review."""
    company, domain = rng.choice(_COMPANIES)
    return {
        "counterparty": company,
        "domain": domain,
        "contract": rng.choice(_CONTRACTS),
        "pages": between(rng, 4, 60),
        "clauses": between(rng, 12, 140),
        "risky": between(rng, 0, 7),
    }
