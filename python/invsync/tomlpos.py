"""Where a problem sits in a TOML file: the line and the field a person goes to fix.

tomllib and msgspec say what is wrong but not on which line: this module finds the
line of a field path in the text, and turns msgspec's `$.skus[3].cap` into a path whose
list elements are named by their `id`. The policy and the simulator's scenarios both
report their refusals through it, as `file:line: field: message`.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

__all__ = ["FieldPath", "Problem", "locate", "msgspec_path", "syntax_problem"]

FieldPath = tuple[str | int, ...]

_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column \d+\)$|\s*\(at end of document\)$")
_MSGSPEC_SUFFIX = re.compile(r" - at `\$(.*)`$")
_MSGSPEC_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_NAMED_IN_MESSAGE = re.compile(r"^Object (?:contains unknown|missing required) field `([^`]+)`")


class Problem(NamedTuple):
    """A refusal as a person reads it: the line, the field and what is wrong."""

    line: int
    field: str
    message: str


def syntax_problem(exc: tomllib.TOMLDecodeError, text: str) -> Problem:
    """A TOML syntax error at its line (0 when tomllib gives none)."""
    message = str(exc)
    match = _TOML_POSITION.search(message)
    if match is None:
        return Problem(0, "syntax", message)
    line = int(match.group(1)) if match.group(1) else text.count("\n") + 1
    return Problem(line, "syntax", message[: match.start()])


def _no_key(_: Mapping[str, Any]) -> str:
    return "..."


def msgspec_path(
    error: str, raw: Mapping[str, Any], dict_key: Callable[[Mapping[str, Any]], str] = _no_key
) -> tuple[FieldPath, str]:
    """Turn msgspec's `... - at `$.skus[3].channels[...].cap`` into a path and a message.

    msgspec writes dict keys as `[...]`; `dict_key(table)` names the key at fault.
    """
    suffix = _MSGSPEC_SUFFIX.search(error)
    message = error[: suffix.start()] if suffix else error
    path: list[str | int] = []
    node: Any = raw
    for match in _MSGSPEC_SEGMENT.finditer(suffix.group(1) if suffix else ""):
        name, position = match.group(1), match.group(2)
        part: str | int
        if name is not None:
            part = name
        elif position is not None:
            part = int(position)
        else:
            part = dict_key(node)
        path.append(part)
        node = _child(node, part)
    named = _NAMED_IN_MESSAGE.match(message)
    if named:
        path.append(named.group(1))
    return tuple(path), message


def _never_a_key(path: FieldPath, depth: int) -> bool:
    return False


def locate(
    text: str,
    raw: Mapping[str, Any],
    path: FieldPath,
    message: str,
    is_key: Callable[[FieldPath, int], bool] = _never_a_key,
) -> Problem:
    """The line of `path` in `text` and its field name; `is_key(path, depth)` says which
    parts are keys of a table of names (written `["amazon"]`, not `.amazon`)."""
    return Problem(TomlPositions(text).line_of(path), _field_name(raw, path, is_key), message)


def _field_name(
    raw: Mapping[str, Any], path: FieldPath, is_key: Callable[[FieldPath, int], bool]
) -> str:
    """`channels[1].share` written as `channels["amazon"].share`: ids read better than indices."""
    out = ""
    node: Any = raw
    for depth, part in enumerate(path):
        child = _child(node, part)
        if isinstance(part, int):
            label = child.get("id", child.get("sku")) if isinstance(child, dict) else None
            out += f'["{label}"]' if isinstance(label, str) else f"[{part}]"
        elif is_key(path, depth):
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
        node = child
    return out


def _child(node: Any, part: str | int) -> Any:
    if isinstance(part, int) and isinstance(node, list) and part < len(node):
        return node[part]
    if isinstance(part, str) and isinstance(node, dict):
        return node.get(part)
    return None


class _Pos:
    """Where a key, header or array element stands, and where its children stand."""

    __slots__ = ("items", "keys", "line")

    def __init__(self, line: int) -> None:
        self.line = line
        self.keys: dict[str, _Pos] = {}
        self.items: list[_Pos] = []


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class TomlPositions:
    """Line numbers of the keys, headers and array elements of an already valid TOML text.

    tomllib returns values without positions; this walks the same text a second time (only
    when an error must be reported) to find the line of `channels[1].share` and the like,
    including keys inside inline tables and multi-line arrays.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._i = 0
        self._newlines = [i for i, char in enumerate(text) if char == "\n"]
        self.root = _Pos(1)
        self._scan()

    def line_of(self, path: FieldPath) -> int:
        """The line of the deepest part of `path` present in the text (1 when none is)."""
        node, line = self.root, 1
        for part in path:
            if isinstance(part, int):
                found = node.items[part] if part < len(node.items) else None
            else:
                found = node.keys.get(part)
            if found is None:
                break
            node, line = found, found.line
        return line

    def _line(self) -> int:
        return bisect.bisect_left(self._newlines, self._i) + 1

    def _peek(self, count: int = 1) -> str:
        return self._text[self._i : self._i + count]

    def _scan(self) -> None:
        table = self.root
        while True:
            self._skip(newlines=True)
            if self._i >= len(self._text):
                return
            line = self._line()
            if self._peek(2) == "[[":
                self._i += 2
                keys = self._key()
                self._i = self._text.index("]]", self._i) + 2
                array = self._descend(self.root, keys, line)
                table = _Pos(line)
                array.items.append(table)
            elif self._peek() == "[":
                self._i += 1
                keys = self._key()
                self._i = self._text.index("]", self._i) + 1
                table = self._descend(self.root, keys, line)
            else:
                self._value(self._assignment(table, line))

    def _assignment(self, table: _Pos, line: int) -> _Pos:
        keys = self._key()
        self._skip()
        self._i += 1  # the "="
        self._skip()
        return self._descend(table, keys, line)

    def _descend(self, node: _Pos, keys: list[str], line: int) -> _Pos:
        last = len(keys) - 1
        for depth, key in enumerate(keys):
            child = node.keys.setdefault(key, _Pos(line))
            # a dotted name through an array of tables continues its last element
            node = child.items[-1] if child.items and depth < last else child
        return node

    def _key(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip()
            quote = self._peek()
            if quote in ('"', "'"):
                end = self._text.index(quote, self._i + 1)
                keys.append(self._text[self._i + 1 : end])
                self._i = end + 1
            else:
                match = _BARE_KEY.match(self._text, self._i)
                if match is None:
                    return keys
                keys.append(match.group())
                self._i = match.end()
            self._skip()
            if self._peek() != ".":
                return keys
            self._i += 1

    def _skip(self, newlines: bool = False) -> None:
        text = self._text
        while self._i < len(text):
            char = text[self._i]
            if char in " \t\r" or (newlines and char == "\n"):
                self._i += 1
            elif char == "#":
                end = text.find("\n", self._i)
                self._i = len(text) if end < 0 else end
            else:
                return

    def _skipped(self, newlines: bool) -> int:
        self._skip(newlines)
        return self._i

    def _value(self, target: _Pos) -> None:
        char = self._peek()
        if self._peek(3) in ('"""', "'''"):
            self._skip_string(self._peek(3))
        elif char in ('"', "'"):
            self._skip_string(char)
        elif char == "[":
            self._i += 1
            while self._skipped(newlines=True) < len(self._text):
                if self._peek() == "]":
                    self._i += 1
                    return
                element = _Pos(self._line())
                target.items.append(element)
                self._value(element)
                self._skip(newlines=True)
                if self._peek() == ",":
                    self._i += 1
        elif char == "{":
            self._i += 1
            while self._skipped(newlines=False) < len(self._text):
                if self._peek() == "}":
                    self._i += 1
                    return
                self._value(self._assignment(target, self._line()))
                self._skip()
                if self._peek() == ",":
                    self._i += 1
        else:
            while self._i < len(self._text) and self._text[self._i] not in ",]}#\n":
                self._i += 1

    def _skip_string(self, quote: str) -> None:
        text = self._text
        self._i += len(quote)
        while self._i < len(text) and not text.startswith(quote, self._i):
            self._i += 2 if text[self._i] == "\\" and quote[0] == '"' else 1
        self._i += len(quote)
        while self._i < len(text) and len(quote) == 3 and text[self._i] == quote[0]:
            self._i += 1  # up to two quotes may sit right before the closing delimiter
