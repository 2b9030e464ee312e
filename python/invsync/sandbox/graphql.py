"""Just enough GraphQL to read a request as a GraphQL server does: the executable
subset of the October 2021 spec (operations, variables, aliases, arguments, directives,
nested selections; no fragments), so the Shopify emulation judges the operation a
client sent, not the bytes it happens to be spelled with.

Parsing stops at the first error with its line and column, as servers report it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, TypeAlias


class GraphQLSyntaxError(Exception):
    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class EnumValue:
    name: str


Value: TypeAlias = (
    "Variable | EnumValue | int | float | str | bool | None | list[Value] | dict[str, Value]"
)


@dataclass(frozen=True)
class Directive:
    name: str
    arguments: dict[str, Value]


@dataclass(frozen=True)
class Field:
    name: str
    alias: str | None
    arguments: dict[str, Value]
    directives: list[Directive]
    selections: list[Field]
    line: int
    column: int

    @property
    def response_key(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Operation:
    kind: str  # "query" or "mutation"
    name: str | None
    variables: dict[str, str]  # name -> type as written, e.g. "InventorySetQuantitiesInput!"
    selections: list[Field] = field(default_factory=list)


_TOKEN = re.compile(
    r"""
    (?P<skip>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{}|])
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
  | (?P<string>"(?:[^"\\\n\r]|\\(?:["\\/bfnrt]|u[0-9A-Fa-f]{4}))*")
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str
    text: str
    line: int
    column: int


def _tokens(source: str) -> list[_Token]:
    out: list[_Token] = []
    pos, line, line_start = 0, 1, 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        column = pos - line_start + 1
        if match is None:
            raise GraphQLSyntaxError(f"Parse error on {source[pos]!r}", line, column)
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "spread":
            raise GraphQLSyntaxError("fragments are not supported here", line, column)
        if kind != "skip":
            out.append(_Token(kind, text, line, column))
        for offset, char in enumerate(text):
            if char == "\n":
                line, line_start = line + 1, pos + offset + 1
        pos = match.end()
    out.append(_Token("end", "", line, pos - line_start + 1))
    return out


class _Parser:
    def __init__(self, source: str) -> None:
        self._tokens = _tokens(source)
        self._at = 0

    def _peek(self) -> _Token:
        return self._tokens[self._at]

    def _next(self) -> _Token:
        token = self._tokens[self._at]
        self._at += 1
        return token

    def _fail(self, token: _Token, expected: str) -> GraphQLSyntaxError:
        found = "end of file" if token.kind == "end" else repr(token.text)
        return GraphQLSyntaxError(
            f"Parse error on {found}, expected {expected}", token.line, token.column
        )

    def _expect(self, text: str) -> _Token:
        token = self._next()
        if token.text != text or token.kind not in ("punct", "name"):
            raise self._fail(token, repr(text))
        return token

    def _accept(self, text: str) -> bool:
        token = self._peek()
        if token.text == text and token.kind == "punct":
            self._at += 1
            return True
        return False

    def _name(self) -> _Token:
        token = self._next()
        if token.kind != "name":
            raise self._fail(token, "a name")
        return token

    def document(self) -> list[Operation]:
        operations = []
        while self._peek().kind != "end":
            operations.append(self._operation())
        if not operations:
            raise self._fail(self._peek(), "an operation")
        return operations

    def _operation(self) -> Operation:
        token = self._peek()
        if token.text == "{" and token.kind == "punct":
            return Operation("query", None, {}, self._selection_set())
        if token.kind != "name" or token.text not in ("query", "mutation"):
            raise self._fail(token, "query or mutation")
        self._next()
        name = self._name().text if self._peek().kind == "name" else None
        variables: dict[str, str] = {}
        if self._accept("("):
            while not self._accept(")"):
                self._expect("$")
                var = self._name().text
                self._expect(":")
                variables[var] = self._type()
                if self._accept("="):
                    self._value(constant=True)
        while self._peek().text == "@":
            self._directive()
        return Operation(token.text, name, variables, self._selection_set())

    def _type(self) -> str:
        if self._accept("["):
            inner = self._type()
            self._expect("]")
            written = f"[{inner}]"
        else:
            written = self._name().text
        return written + "!" if self._accept("!") else written

    def _selection_set(self) -> list[Field]:
        self._expect("{")
        fields = [self._field()]
        while not self._accept("}"):
            fields.append(self._field())
        return fields

    def _field(self) -> Field:
        first = self._name()
        alias, name = None, first.text
        if self._accept(":"):
            alias, name = first.text, self._name().text
        arguments = self._arguments()
        directives = []
        while self._peek().text == "@" and self._peek().kind == "punct":
            directives.append(self._directive())
        selections = self._selection_set() if self._peek().text == "{" else []
        return Field(name, alias, arguments, directives, selections, first.line, first.column)

    def _directive(self) -> Directive:
        self._expect("@")
        return Directive(self._name().text, self._arguments())

    def _arguments(self) -> dict[str, Value]:
        arguments: dict[str, Value] = {}
        if self._accept("("):
            while not self._accept(")"):
                name = self._name().text
                self._expect(":")
                arguments[name] = self._value(constant=False)
        return arguments

    def _value(self, *, constant: bool) -> Value:
        token = self._next()
        if token.kind == "punct" and token.text == "$" and not constant:
            return Variable(self._name().text)
        if token.kind == "number":
            return float(token.text) if any(c in token.text for c in ".eE") else int(token.text)
        if token.kind == "string":
            return str(json.loads(token.text))
        if token.kind == "name":
            return {"true": True, "false": False, "null": None}.get(
                token.text, EnumValue(token.text)
            )
        if token.kind == "punct" and token.text == "[":
            items: list[Value] = []
            while not self._accept("]"):
                items.append(self._value(constant=constant))
            return items
        if token.kind == "punct" and token.text == "{":
            fields: dict[str, Value] = {}
            while not self._accept("}"):
                name = self._name().text
                self._expect(":")
                fields[name] = self._value(constant=constant)
            return fields
        raise self._fail(token, "a value")


def parse(source: str) -> list[Operation]:
    """The operations of a GraphQL document; GraphQLSyntaxError at the first error."""
    return _Parser(source).document()


def resolve(value: Value, variables: dict[str, Any]) -> Any:
    """`value` with every variable replaced by its JSON value (absent: the sentinel
    MISSING, so a caller can tell an omitted field from an explicit null)."""
    if isinstance(value, Variable):
        return variables.get(value.name, MISSING)
    if isinstance(value, EnumValue):
        return value.name
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, variables) for k, v in value.items()}
    return value


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def variables_used(value: Value) -> list[str]:
    if isinstance(value, Variable):
        return [value.name]
    if isinstance(value, list):
        return [name for v in value for name in variables_used(v)]
    if isinstance(value, dict):
        return [name for v in value.values() for name in variables_used(v)]
    return []
