"""Ledgerly, a bookkeeping service: invoice extraction, expense sorting and vendor checks."""

from __future__ import annotations

from stepgraph.demo.catalog import Batching, DemoOrganization, Flow
from stepgraph.demo.record_fields import expense_record, invoice_record, vendor_record
from stepgraph.demo.steps import (
    api_call_step,
    condition_step,
    email_step,
    local_step,
    prompt_step,
    webhook_step,
)

_ID = "org_8f14c3a09e27"
# The first person starts the most work: jobs pick people with weights falling by rank.
_USERS = (
    "user_3d7a9b1e5f02",
    "user_c94e0f61a8b3",
    "user_0b5f2d8c7e16",
    "user_a7193e4d2c50",
    "user_5e8c1b0f9a74",
)

FLOWS: tuple[Flow, ...] = (
    Flow(
        flow_id="flow_invoice_extraction",
        organization_id=_ID,
        share=28,
        versions=(("version_3.4.1", -40), ("version_3.5.0", 8), ("version_4.0.0", 29)),
        make_record=invoice_record,
        record_name="Invoice {invoice}",
        metadata=("vendor", "pages", "source"),
        metadata_rate=0.75,
        batching=Batching(share=0.9, size=12, alpha=1.25, cap=2000, workers=10),
        steps=(
            api_call_step(
                "step_001",
                "Fetch Invoice PDF",
                url="https://api.ledgerly.example/v2/inbox/attachments",
                output='{{"file":"{invoice}.pdf","pages":{pages}}}',
                method="GET",
                median_ms=280,
            ),
            api_call_step(
                "step_002",
                "Run OCR",
                url="https://ocr.ledgerly.example/v1/documents",
                output='{{"pages":{pages},"confidence":0.97}}',
                median_ms=2400,
            ),
            # Version 4.0.0 moved extraction to another model: a new step, same name.
            *(
                prompt_step(
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
            local_step(
                "code",
                "step_004",
                "Validate Totals",
                output='{{"valid":true,"sum":{total},"lineItems":{line_items}}}',
                median_ms=35,
                config={"runtime": "node20", "entrypoint": "validateTotals.js"},
            ),
            api_call_step(
                "step_005",
                "Match Purchase Order",
                url="https://erp.ledgerly.example/api/purchase-orders/match",
                output='{{"matched":true,"po":"{po_number}"}}',
                median_ms=700,
                since=1,
            ),
            condition_step(
                "step_006",
                "Requires Approval?",
                flag="needs_approval",
                expression="steps.step_003.total > 5000",
            ),
            api_call_step(
                "step_008",
                "Request Controller Approval",
                url="https://api.ledgerly.example/v2/approvals",
                output='{{"approvalId":"apr_{ref}","approver":"controller"}}',
                median_ms=260,
                skip_unless="needs_approval",
            ),
            webhook_step(
                "step_007", "Push to ERP", url="https://erp.ledgerly.example/hooks/invoices"
            ),
        ),
    ),
    Flow(
        flow_id="flow_expense_categorization",
        organization_id=_ID,
        share=6,
        versions=(("version_1.2.0", -35), ("version_1.3.0", 17)),
        make_record=expense_record,
        record_name="Expense {expense} - {merchant}",
        metadata=("cost_center", "country"),
        metadata_rate=0.5,
        batching=Batching(share=0.7, size=10, alpha=1.5, cap=600, workers=8),
        steps=(
            local_step(
                "transform",
                "step_001",
                "Normalize Merchant Name",
                output='{{"merchant":"{merchant}"}}',
                median_ms=12,
            ),
            prompt_step(
                "step_002",
                "Categorize Expense",
                model="gemini-1.5-flash",
                prompt="Classify this expense into one accounting category: {amount} {currency} "
                "at {merchant}, submitted by {full_name} for cost center {cost_center}.",
                output='{{"category":"{category}","confidence":0.93}}',
                completion=30,
                context=150,
            ),
            local_step(
                "code",
                "step_003",
                "Check Policy Limits",
                output='{{"violation":{violation}}}',
                median_ms=25,
                config={"runtime": "python3.12", "policy": "travel-2026"},
            ),
            condition_step(
                "step_004",
                "Policy Violation?",
                flag="violation",
                expression="steps.step_003.violation",
            ),
            email_step(
                "step_005",
                "Notify Manager",
                template="expense-violation",
                skip_unless="violation",
            ),
            api_call_step(
                "step_006",
                "Sync to Ledger",
                url="https://api.ledgerly.example/v2/journal-entries",
                output='{{"entryId":"je_{ref}","status":"posted"}}',
                median_ms=410,
                since=1,
            ),
        ),
    ),
    Flow(
        flow_id="flow_vendor_risk_check",
        organization_id=_ID,
        share=1.5,
        versions=(("version_0.3.0", -10),),
        make_record=vendor_record,
        record_name="Vendor - {vendor}",
        metadata=("country",),
        metadata_rate=0.4,
        batching=Batching(share=0.5, size=5, alpha=1.8, cap=120, workers=3),
        steps=(
            api_call_step(
                "step_001",
                "Look Up Company Registry",
                url="https://api.opencorp.example/v1/companies/search",
                output='{{"registryId":"{registry_id}","status":"active"}}',
                method="GET",
                median_ms=1100,
            ),
            api_call_step(
                "step_002",
                "Search Adverse Media",
                url="https://api.newsscan.example/v2/search",
                output='{{"mentions":{mentions}}}',
                method="GET",
                median_ms=2600,
                fail_rate=0.03,
            ),
            prompt_step(
                "step_003",
                "Summarize Vendor Risk",
                model="claude-3-5-sonnet",
                prompt="Summarize the onboarding risk of vendor {vendor} ({country}, registry "
                "{registry_id}) from the registry record and {mentions} media mentions.",
                output='{{"riskLevel":"{risk_level}","mentions":{mentions}}}',
                completion=300,
                context=3000,
            ),
            api_call_step(
                "step_004",
                "Store Risk Report",
                url="https://api.ledgerly.example/v2/vendors/risk-reports",
                output='{{"reportId":"rpt_{ref}"}}',
                median_ms=260,
            ),
        ),
    ),
)
"""The flows the organization owns."""

ORGANIZATION = DemoOrganization(_ID, "Ledgerly", _USERS, tuple(flow.flow_id for flow in FLOWS))
"""Ledgerly, its people and its flows."""
