"""Northwind Financial, a bank: customer onboarding, loan document review and fraud alerts."""

from __future__ import annotations

from stepgraph.demo.catalog import Batching, DemoOrganization, Flow
from stepgraph.demo.record_fields import fraud_record, loan_record, onboarding_record
from stepgraph.demo.steps import (
    api_call_step,
    condition_step,
    email_step,
    local_step,
    prompt_step,
    webhook_step,
)

_ID = "org_2b7e41c9d05a"
# The first person starts the most work: jobs pick people with weights falling by rank.
_USERS = ("user_8c21f0a3b7d4", "user_41e9d27a0c6f", "user_f07b3c58e912", "user_6a0d94e1c2b5")

FLOWS: tuple[Flow, ...] = (
    Flow(
        flow_id="flow_customer_onboarding",
        organization_id=_ID,
        share=14,
        versions=(("version_2.0.3", -30), ("version_2.1.0", 12), ("version_2.2.0", 33)),
        make_record=onboarding_record,
        record_name="Customer Onboarding - {full_name}",
        metadata=("source", "country", "plan"),
        metadata_rate=0.8,
        batching=Batching(share=0.55, size=8, alpha=1.4, cap=800, workers=6),
        steps=(
            api_call_step(
                "step_001",
                "Validate Customer Data",
                url="https://api.northwind.example/v1/customers/validate",
                output='{{"valid":true,"errors":[]}}',
                median_ms=220,
            ),
            api_call_step(
                "step_002",
                "Verify Identity Document",
                url="https://api.idverify.example/v3/checks",
                output='{{"result":"clear","document":"{id_document}","country":"{country}"}}',
                median_ms=1800,
                fail_rate=0.015,
            ),
            api_call_step(
                "step_003",
                "Screen Sanctions Lists",
                url="https://api.sanctions.example/v2/screen",
                output='{{"matches":0,"lists":["OFAC","EU","UN"]}}',
                median_ms=640,
            ),
            prompt_step(
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
            condition_step(
                "step_005",
                "Needs Manual Review?",
                flag="manual_review",
                expression="steps.step_004.riskLevel == 'high'",
            ),
            api_call_step(
                "step_008",
                "Create Compliance Review Task",
                url="https://api.northwind.example/v1/compliance/tasks",
                output='{{"taskId":"task_{task_ref}","queue":"compliance"}}',
                median_ms=300,
                skip_unless="manual_review",
                since=1,
            ),
            email_step("step_006", "Send Welcome Email", template="welcome"),
            api_call_step(
                "step_007",
                "Provision Account",
                url="https://api.northwind.example/v1/accounts",
                output='{{"accountId":"acct_{ref}","plan":"{plan}"}}',
                median_ms=480,
                since=2,
            ),
        ),
    ),
    Flow(
        flow_id="flow_loan_document_review",
        organization_id=_ID,
        share=2.5,
        versions=(("version_1.0.0", -50), ("version_1.1.0", 20)),
        make_record=loan_record,
        record_name="Loan Application {application} - {full_name}",
        metadata=("country", "term_months"),
        metadata_rate=0.6,
        batching=Batching(share=0.8, size=5, alpha=1.6, cap=300, workers=4),
        steps=(
            api_call_step(
                "step_001",
                "Fetch Application Documents",
                url="https://api.northwind.example/v1/loans/documents",
                output='{{"documents":{documents},"application":"{application}"}}',
                method="GET",
                median_ms=900,
            ),
            prompt_step(
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
            local_step(
                "code",
                "step_003",
                "Compute Debt-to-Income Ratio",
                output='{{"dti":{dti}}}',
                median_ms=40,
                config={"runtime": "python3.12", "entrypoint": "dti.py"},
            ),
            prompt_step(
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
            webhook_step(
                "step_005",
                "Post to Underwriting Queue",
                url="https://hooks.northwind.example/underwriting",
            ),
        ),
    ),
    Flow(
        flow_id="flow_fraud_alert_review",
        organization_id=_ID,
        share=4,
        versions=(("version_0.9.2", -20), ("version_1.0.0", 26)),
        make_record=fraud_record,
        record_name="Fraud Alert {alert} - Card ending {card_last4}",
        metadata=("country", "merchant"),
        metadata_rate=0.9,
        batching=Batching(share=0.1, size=5, alpha=2.0, cap=100, workers=8),
        steps=(
            api_call_step(
                "step_001",
                "Load Transaction History",
                url="https://api.northwind.example/v1/cards/transactions",
                output='{{"transactions":{transactions},"days":90}}',
                method="GET",
                median_ms=520,
            ),
            local_step(
                "transform",
                "step_002",
                "Build Feature Vector",
                output='{{"features":42,"merchant":"{merchant}"}}',
                median_ms=18,
            ),
            local_step(
                "code",
                "step_003",
                "Score Transaction Risk",
                output='{{"score":{fraud_score}}}',
                median_ms=95,
                config={"runtime": "python3.12", "model": "fraud-gbm-2026-09"},
            ),
            prompt_step(
                "step_004",
                "Explain Alert",
                model="gpt-4o-mini",
                prompt="Explain in two sentences for a fraud analyst why the payment of {amount} "
                "at {merchant} on the card ending {card_last4} scored {fraud_score}.",
                output="Card ending {card_last4}: {amount} at {merchant}, score {fraud_score}.",
                completion=70,
                context=900,
            ),
            condition_step(
                "step_005",
                "Escalate to Fraud Team?",
                flag="escalate",
                expression="steps.step_003.score > 0.55",
            ),
            webhook_step(
                "step_006",
                "Notify Fraud Team",
                url="https://hooks.slack.example/fraud-alerts",
                skip_unless="escalate",
            ),
        ),
    ),
)
"""The flows the organization owns."""

ORGANIZATION = DemoOrganization(
    _ID, "Northwind Financial", _USERS, tuple(flow.flow_id for flow in FLOWS)
)
"""Northwind Financial, its people and its flows."""
