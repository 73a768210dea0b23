"""What the gateway keeps between requests stays bounded, whatever clients send."""

from __future__ import annotations

from graphql import parse

from stepgraph.graphql import plans
from stepgraph.graphql.documents import DocumentCache, count_tokens
from tests.test_fastpath import MAIN_FLOW, PAGE, Apps, apps, page_variables

__all__ = ["apps"]  # the fixture, shared with test_fastpath


def _document(i: int) -> str:
    return f"{{ a{i}: __typename }}"


def test_the_least_recently_used_document_goes_first() -> None:
    cache = DocumentCache(max_documents=3)
    for i in range(3):
        cache.add(_document(i), parse(_document(i)))
    assert cache.get(_document(0)) is not None  # now the most recently used
    cache.add(_document(3), parse(_document(3)))
    assert [cache.get(_document(i)) is not None for i in range(4)] == [True, False, True, True]


def test_documents_are_bounded_by_their_tokens() -> None:
    tokens = count_tokens(parse(_document(0)))
    cache = DocumentCache(max_documents=100, max_tokens=tokens * 8)
    for i in range(50):
        cache.add(_document(i), parse(_document(i)))
    assert len(cache) == 8
    assert cache.tokens <= cache.max_tokens


def test_a_document_too_big_for_the_budget_is_not_kept() -> None:
    text = "{ " + " ".join(f"a{i}: __typename" for i in range(100)) + " }"
    cache = DocumentCache(max_tokens=100)
    assert cache.add(text, parse(text)) is None
    assert len(cache) == 0


async def test_many_distinct_query_texts_keep_the_cache_bounded(apps: Apps) -> None:
    documents = apps.view.fast_path.documents  # type: ignore[union-attr]
    documents.max_documents = 20
    for i in range(60):
        await apps.served.post(
            "/graphql",
            json={"query": f'{{ a{i}: stepResults(flowId: "{MAIN_FLOW}") {{ data {{ id }} }} }}'},
            headers={"Authorization": f"Bearer {apps.keys['reader']}"},
        )
    assert len(documents) == 20
    assert documents.tokens <= documents.max_tokens


async def test_variables_and_conditions_keep_each_plan_bounded(apps: Apps) -> None:
    query = PAGE.replace("limit offset", "limit @include(if: $more) offset").replace(
        "$offset: Int)", "$offset: Int, $more: Boolean!)"
    )
    for offset in range(2 * max(plans.MAX_VARIABLE_SETS, plans.MAX_QUERIES) + 20):
        await apps.compare(query, page_variables(offset=offset, more=offset % 2 == 0))
    fast_path = apps.view.fast_path
    assert fast_path is not None
    plan = fast_path.plan(query, None)
    assert plan is not None
    assert len(plan._variables) == plans.MAX_VARIABLE_SETS
    assert len(plan._shapes) == 2
    for shape in plan._shapes.values():
        assert shape is not None
        for selection in shape.pages:
            assert len(selection.queries) == plans.MAX_QUERIES
