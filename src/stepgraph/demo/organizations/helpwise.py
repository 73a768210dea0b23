"""Helpwise, a customer support desk: ticket triage, satisfaction follow-ups and churn risk."""

from __future__ import annotations

from stepgraph.demo.catalog import Batching, DemoOrganization, Flow
from stepgraph.demo.record_fields import account_record, survey_record, ticket_record
from stepgraph.demo.steps import (
    api_call_step,
    condition_step,
    email_step,
    embedding_step,
    local_step,
    prompt_step,
    webhook_step,
)

_ID = "org_5c9d2e7b1f40"
# The first person starts the most work: jobs pick people with weights falling by rank.
_USERS = ("user_e2a05d7c9b31", "user_7f4b8e2a0d96", "user_19c6a3f0e5b8")

FLOWS: tuple[Flow, ...] = (
    Flow(
        flow_id="flow_support_triage",
        organization_id=_ID,
        share=20,
        versions=(("version_1.8.0", -25), ("version_1.9.0", 15), ("version_1.9.1", 24)),
        make_record=ticket_record,
        record_name="Ticket #{ticket} - {subject}",
        metadata=("channel", "tier", "language"),
        metadata_rate=0.9,
        batching=Batching(share=0.15, size=5, alpha=1.7, cap=400, workers=6),
        steps=(
            api_call_step(
                "step_001",
                "Fetch Ticket",
                url="https://helpwise.example/api/v2/tickets",
                output='{{"ticket":{ticket},"channel":"{channel}"}}',
                method="GET",
                median_ms=180,
            ),
            local_step(
                "code",
                "step_002",
                "Detect Language",
                output='{{"language":"{language}"}}',
                median_ms=30,
                config={"runtime": "python3.12", "library": "lingua"},
            ),
            embedding_step(
                "step_007",
                "Embed Ticket",
                model="text-embedding-3-small",
                text="Ticket #{ticket}: {subject}",
                since=1,
            ),
            api_call_step(
                "step_008",
                "Find Similar Tickets",
                url="https://vectors.helpwise.example/v1/query",
                output='{{"matches":{similar}}}',
                median_ms=90,
                since=1,
            ),
            prompt_step(
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
            prompt_step(
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
            condition_step(
                "step_005",
                "Escalate to Tier 2?",
                flag="escalate",
                expression="priority == 'urgent' or tier == 'enterprise'",
            ),
            api_call_step(
                "step_006",
                "Update Helpdesk",
                url="https://helpwise.example/api/v2/tickets/update",
                output='{{"ticket":{ticket},"status":"pending_agent"}}',
                method="PATCH",
                median_ms=210,
            ),
        ),
    ),
    Flow(
        flow_id="flow_csat_followup",
        organization_id=_ID,
        share=3,
        versions=(("version_1.0.2", -60),),
        make_record=survey_record,
        record_name="Survey Response - {full_name} ({rating}/5)",
        metadata=("tier",),
        metadata_rate=0.6,
        batching=Batching(share=0.9, size=15, alpha=1.6, cap=500, workers=8),
        steps=(
            api_call_step(
                "step_001",
                "Load Survey Response",
                url="https://helpwise.example/api/v2/surveys",
                output='{{"survey":"{survey}","rating":{rating}}}',
                method="GET",
                median_ms=160,
            ),
            prompt_step(
                "step_002",
                "Analyze Sentiment",
                model="claude-3-5-haiku",
                prompt="Analyze the sentiment and main complaint of survey {survey} from "
                "{full_name} (rating {rating}/5). Respond with JSON.",
                output='{{"sentiment":"{sentiment}","topics":["response_time"]}}',
                completion=60,
                context=300,
            ),
            prompt_step(
                "step_003",
                "Draft Follow-up",
                model="gpt-4o-mini",
                prompt="Write a short, sincere follow-up to {full_name}, a {tier} customer who "
                "rated us {rating}/5 with {sentiment} sentiment.",
                output="Hi {first_name}, we're sorry your experience fell short ...",
                completion=150,
                temperature=0.7,
            ),
            email_step("step_004", "Send Follow-up Email", template="csat-followup"),
        ),
    ),
    Flow(
        flow_id="flow_churn_risk_review",
        organization_id=_ID,
        share=3,
        versions=(("version_2.0.0", -14), ("version_2.1.0", 31)),
        make_record=account_record,
        record_name="Account - {company}",
        metadata=("tier", "seats", "renewal"),
        metadata_rate=1.0,
        batching=Batching(share=0.95, size=20, alpha=1.5, cap=600, workers=5),
        steps=(
            api_call_step(
                "step_001",
                "Pull Usage Metrics",
                url="https://analytics.helpwise.example/v1/accounts/usage",
                output='{{"seats":{seats},"days":90}}',
                method="GET",
                median_ms=1300,
            ),
            local_step(
                "transform",
                "step_002",
                "Aggregate 90-Day Trends",
                output='{{"usageChange":{usage_change}}}',
                median_ms=45,
            ),
            prompt_step(
                "step_003",
                "Assess Churn Risk",
                model="gpt-4o",
                prompt="Assess the churn risk of {company} ({seats} seats, {arr} ARR, renewal "
                "{renewal}) given a usage change of {usage_change}% over 90 days.",
                output='{{"churnRisk":"{churn_risk}","drivers":["usage_decline"]}}',
                completion=180,
                context=1200,
            ),
            webhook_step(
                "step_004",
                "Notify Account Manager",
                url="https://hooks.slack.example/account-health",
                since=1,
            ),
        ),
    ),
)
"""The flows the organization owns."""

ORGANIZATION = DemoOrganization(_ID, "Helpwise", _USERS, tuple(flow.flow_id for flow in FLOWS))
"""Helpwise, its people and its flows."""
