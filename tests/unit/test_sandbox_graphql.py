"""The sandbox's GraphQL reader understands the documents clients really send (names,
aliases, comments, escapes, inline input objects) and refuses what is not GraphQL."""

from __future__ import annotations

import pytest

from invsync.marketplaces import shopify as doc
from invsync.sandbox.graphql import (
    MISSING,
    EnumValue,
    GraphQLSyntaxError,
    Value,
    Variable,
    parse,
    resolve,
)


def test_the_shipped_mutation_reads_as_one_mutation_with_its_directive() -> None:
    (operation,) = parse(doc.SET_QUANTITIES)
    assert (operation.kind, operation.name) == ("mutation", "SetAvailable")
    assert operation.variables == {"input": "InventorySetQuantitiesInput!", "key": "String!"}
    (field,) = operation.selections
    assert field.name == doc.MUTATION_FIELD
    assert field.arguments == {"input": Variable("input")}
    assert [(d.name, d.arguments) for d in field.directives] == [
        ("idempotent", {"key": Variable("key")})
    ]
    assert [f.name for f in field.selections[0].selections] == ["code", "field", "message"]


def test_aliases_comments_escapes_and_inline_objects() -> None:
    source = """
    # a comment, then an anonymous query
    {
      first: inventoryItem(id: "gid://x/\\"1\\"\\u00e9") { id }
      inventoryLevel(names: ["available", "on_hand"], n: -3, f: 1.5e2, e: AVAILABLE, o: {a: null, b: true})
    }
    """
    (operation,) = parse(source)
    aliased, plain = operation.selections
    assert (aliased.alias, aliased.name, aliased.response_key) == (
        "first",
        "inventoryItem",
        "first",
    )
    assert aliased.arguments == {"id": 'gid://x/"1"\u00e9'}
    assert plain.arguments == {
        "names": ["available", "on_hand"],
        "n": -3,
        "f": 150.0,
        "e": EnumValue("AVAILABLE"),
        "o": {"a": None, "b": True},
    }


def test_resolve_tells_an_absent_variable_from_an_explicit_null() -> None:
    value: Value = {"x": Variable("given"), "y": Variable("absent")}
    assert resolve(value, {"given": None}) == {"x": None, "y": MISSING}


@pytest.mark.parametrize(
    "source",
    [
        "",
        "mutation { a(b: ) { c } }",
        "query { a { ...F } }",
        "subscription { a }",
        '{ a(b: "unterminated) }',
        "{ a",
    ],
)
def test_what_is_not_executable_graphql_is_a_syntax_error(source: str) -> None:
    with pytest.raises(GraphQLSyntaxError):
        parse(source)
