"""Brightcart, an online shop: lead enrichment, product descriptions and contract review."""

from __future__ import annotations

from stepgraph.demo.catalog import Batching, DemoOrganization, Flow
from stepgraph.demo.record_fields import contract_record, lead_record, product_record
from stepgraph.demo.steps import api_call_step, local_step, prompt_step, webhook_step

_ID = "org_d3a6f0b8c412"
# The first person starts the most work: jobs pick people with weights falling by rank.
_USERS = ("user_b8e7c2a91f04", "user_2c0f5a8d6e73", "user_d4f19b7e3a08", "user_68a2e0c4f1b9")

FLOWS: tuple[Flow, ...] = (
    Flow(
        flow_id="flow_lead_enrichment",
        organization_id=_ID,
        share=7,
        versions=(("version_1.4.0", -45), ("version_1.5.0", 21)),
        make_record=lead_record,
        record_name="Lead - {full_name} ({company})",
        metadata=("campaign", "country"),
        metadata_rate=0.7,
        batching=Batching(share=0.6, size=10, alpha=1.5, cap=700, workers=6),
        steps=(
            api_call_step(
                "step_001",
                "Enrich Company",
                url="https://api.clearbit.example/v2/companies/find",
                output='{{"domain":"{domain}","employees":{employees}}}',
                method="GET",
                median_ms=650,
                fail_rate=0.02,
            ),
            api_call_step(
                "step_002",
                "Find Contact Profile",
                url="https://api.peopledata.example/v5/person/enrich",
                output='{{"title":"{title}","found":true}}',
                median_ms=900,
                fail_rate=0.02,
            ),
            prompt_step(
                "step_003",
                "Score Lead",
                model="gpt-4o-mini",
                prompt="Score this lead from 0 to 100 for fit: {full_name}, {title} at {company} "
                "({employees} employees, {country}), from campaign {campaign}.",
                output='{{"score":{lead_score},"fit":"good"}}',
                completion=45,
                context=500,
            ),
            prompt_step(
                "step_004",
                "Write Intro Email",
                model="claude-3-5-sonnet",
                prompt="Write a short, personal intro email to {full_name}, {title} at "
                "{company}, referencing the {campaign} campaign.",
                output="Subject: Quick idea for {company} / Hi {first_name}, ...",
                completion=210,
                temperature=0.8,
            ),
            api_call_step(
                "step_005",
                "Create CRM Contact",
                url="https://crm.brightcart.example/api/contacts",
                output='{{"contactId":"003{ref}","owner":"sdr"}}',
                median_ms=380,
                since=1,
            ),
        ),
    ),
    Flow(
        flow_id="flow_product_descriptions",
        organization_id=_ID,
        share=10,
        versions=(("version_0.7.0", -30), ("version_0.8.0", 10)),
        make_record=product_record,
        record_name="Product {sku} - {product}",
        metadata=("category", "color"),
        metadata_rate=1.0,
        batching=Batching(share=0.95, size=25, alpha=1.3, cap=1500, workers=12),
        steps=(
            api_call_step(
                "step_001",
                "Load Product Attributes",
                url="https://pim.brightcart.example/api/products",
                output='{{"sku":"{sku}","category":"{category}","color":"{color}"}}',
                method="GET",
                median_ms=150,
            ),
            prompt_step(
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
            prompt_step(
                "step_003",
                "Check Brand Guidelines",
                model="gpt-4o-mini",
                prompt="Check the product description of {sku} against the brand guidelines. "
                "Respond with JSON: compliant and issues.",
                output='{{"compliant":true,"issues":[]}}',
                completion=50,
                context=1100,
            ),
            prompt_step(
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
            webhook_step(
                "step_005",
                "Publish to Storefront",
                url="https://shop.brightcart.example/hooks/products",
            ),
        ),
    ),
    Flow(
        flow_id="flow_contract_clause_review",
        organization_id=_ID,
        share=1,
        versions=(("version_0.2.1", -5),),
        make_record=contract_record,
        record_name="Contract - {counterparty} {contract}",
        metadata=("pages",),
        metadata_rate=0.8,
        batching=Batching(share=0.3, size=3, alpha=2.0, cap=40, workers=2),
        steps=(
            api_call_step(
                "step_001",
                "Fetch Contract PDF",
                url="https://docs.brightcart.example/api/files",
                output='{{"pages":{pages}}}',
                method="GET",
                median_ms=450,
            ),
            local_step(
                "code",
                "step_002",
                "Split into Clauses",
                output='{{"clauses":{clauses}}}',
                median_ms=220,
                config={"runtime": "python3.12", "entrypoint": "split.py"},
            ),
            prompt_step(
                "step_003",
                "Review Risky Clauses",
                model="claude-3-5-sonnet",
                prompt="Review the {clauses} clauses of the {contract} with {counterparty} "
                "({pages} pages) against our playbook. Flag risky clauses with reasons.",
                output='{{"risky":{risky},"clauses":{clauses}}}',
                completion=900,
                context=14000,
            ),
            prompt_step(
                "step_004",
                "Summarize Redlines",
                model="claude-3-5-sonnet",
                prompt="Summarize the proposed redlines for the {contract} with {counterparty} "
                "for the legal team.",
                output="{risky} clauses need redlines: limitation of liability, ...",
                completion=400,
                context=2500,
            ),
            webhook_step(
                "step_005", "Notify Legal", url="https://hooks.slack.example/legal-review"
            ),
        ),
    ),
)
"""The flows the organization owns."""

ORGANIZATION = DemoOrganization(_ID, "Brightcart", _USERS, tuple(flow.flow_id for flow in FLOWS))
"""Brightcart, its people and its flows."""
