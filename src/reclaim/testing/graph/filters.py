"""A small OData ``$filter`` parser and evaluator for directory objects.

Supported: ``eq ne gt ge lt le``, ``in (...)``, ``and or not``, parentheses,
``startswith(p,'x')``, ``endswith(p,'x')``, lambda ``coll/any(x:x/prop eq v)``, string
literals with doubled quotes, ``true false null``, numbers, bare GUIDs and datetimes.
Which operators need advanced query parameters is reported by :attr:`Filter.advanced`.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reclaim.testing.graph.clock import parse_dt
from reclaim.testing.graph.errors import GraphError, bad_request

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^']|'')*')
      | (?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<punct>[(),:])
      | (?P<word>[^\s(),':]+)
    )""",
    re.VERBOSE,
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}

Pred = Callable[[dict[str, Any]], bool]


@dataclass
class Filter:
    """A parsed filter: a predicate over Graph JSON objects plus facts about the query."""

    predicate: Pred
    advanced: list[str] = field(default_factory=list)
    properties: set[str] = field(default_factory=set)

    def __call__(self, obj: dict[str, Any]) -> bool:
        """Does ``obj`` match?"""
        return self.predicate(obj)


def parse_filter(text: str) -> Filter:
    """Parse ``text`` or raise a 400 ``BadRequest`` like Graph does for syntax errors."""
    tokens = _tokenize(text)
    parser = _Parser(tokens)
    pred = parser.parse_or()
    if parser.pos != len(tokens):
        raise _syntax(text)
    return Filter(pred, parser.advanced, parser.properties)


def _tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise _syntax(text)
        kind = m.lastgroup or "word"
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _syntax(text: str) -> GraphError:
    return GraphError(400, "BadRequest", f"Invalid filter clause: syntax error in '{text}'.")


def _literal(kind: str, value: str) -> Any:
    if kind == "str":
        return value[1:-1].replace("''", "'")
    if kind == "dt":
        return parse_dt(value)
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    if _GUID.match(value):
        return value
    try:
        return float(value) if "." in value else int(value)
    except ValueError:
        raise bad_request(f"Invalid filter clause: unexpected literal '{value}'.") from None


def _get(obj: Any, path: str) -> Any:
    cur = obj
    for part in path.split("/"):
        if not isinstance(cur, dict):
            return None
        match = next((k for k in cur if k.lower() == part.lower()), None)
        cur = cur.get(match) if match else None
    return cur


def _norm(v: Any) -> Any:
    if isinstance(v, str):
        dt = parse_dt(v) if re.match(r"^\d{4}-\d{2}-\d{2}T", v) else None
        return dt if dt else v.lower()
    return v


def _compare(op: str, left: Any, right: Any) -> bool:
    a, b = _norm(left), _norm(right)
    if op == "eq":
        return bool(a == b)
    if op == "ne":
        return bool(a != b)
    if a is None or b is None:
        return False
    try:
        return bool(_ORDER[op](a, b))
    except TypeError:  # e.g. a string compared with a number: no match, as in Graph
        return False


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.advanced: list[str] = []
        self.properties: set[str] = set()
        self.lambda_var: str | None = None

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise bad_request("Invalid filter clause: unexpected end of expression.")
        self.pos += 1
        return tok

    def expect(self, value: str) -> None:
        _, got = self.take()
        if got.lower() != value:
            raise bad_request(f"Invalid filter clause: expected '{value}', found '{got}'.")

    def is_word(self, value: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok[0] == "word" and tok[1].lower() == value

    def parse_or(self) -> Pred:
        preds = [self.parse_and()]
        while self.is_word("or"):
            self.pos += 1
            preds.append(self.parse_and())
        return preds[0] if len(preds) == 1 else (lambda o: any(p(o) for p in preds))

    def parse_and(self) -> Pred:
        preds = [self.parse_unary()]
        while self.is_word("and"):
            self.pos += 1
            preds.append(self.parse_unary())
        return preds[0] if len(preds) == 1 else (lambda o: all(p(o) for p in preds))

    def parse_unary(self) -> Pred:
        if self.is_word("not"):
            self.pos += 1
            self.advanced.append("not")
            inner = self.parse_unary()
            return lambda o: not inner(o)
        return self.parse_primary()

    def parse_primary(self) -> Pred:
        tok = self.take()
        if tok == ("punct", "("):
            inner = self.parse_or()
            self.expect(")")
            return inner
        if tok[0] != "word":
            raise bad_request(f"Invalid filter clause: unexpected '{tok[1]}'.")
        name = tok[1]
        if name.lower() in ("startswith", "endswith") and self.peek() == ("punct", "("):
            return self.parse_function(name.lower())
        if name.lower().endswith("/any") and self.peek() == ("punct", "("):
            return self.parse_any(name[: -len("/any")])
        path = self.path(name)
        op = self.take()[1].lower()
        if op == "in":
            self.expect("(")
            values = [self.value()]
            while self.peek() == ("punct", ","):
                self.pos += 1
                values.append(self.value())
            self.expect(")")
            normed = [_norm(v) for v in values]
            return lambda o: _norm(path(o)) in normed
        if op not in _COMPARE:
            raise bad_request(f"Invalid filter clause: unknown operator '{op}'.")
        if op == "ne":
            self.advanced.append("ne")
        right = self.value()
        return lambda o: _compare(op, path(o), right)

    def path(self, name: str) -> Callable[[dict[str, Any]], Any]:
        var = self.lambda_var
        if var and (name == var or name.startswith(var + "/")):
            rest = name[len(var) + 1 :]
            return lambda item: item if not rest else _get(item, rest)
        self.properties.add(name.split("/")[0])
        return lambda o: _get(o, name)

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "punct":
            raise bad_request(f"Invalid filter clause: unexpected '{text}'.")
        return _literal(kind, text)

    def parse_function(self, fn: str) -> Pred:
        self.expect("(")
        path = self.path(self.take()[1])
        self.expect(",")
        arg = str(self.value()).lower()
        self.expect(")")
        if fn == "endswith":
            self.advanced.append("endsWith")

            def ends(o: dict[str, Any]) -> bool:
                v = path(o)
                return isinstance(v, str) and v.lower().endswith(arg)

            return ends

        def starts(o: dict[str, Any]) -> bool:
            v = path(o)
            return isinstance(v, str) and v.lower().startswith(arg)

        return starts

    def parse_any(self, collection: str) -> Pred:
        self.expect("(")
        var = self.take()[1]
        self.expect(":")
        outer, self.lambda_var = self.lambda_var, var
        inner = self.parse_or()
        self.lambda_var = outer
        self.expect(")")
        self.properties.add(collection.split("/")[0])

        def anything(o: dict[str, Any]) -> bool:
            items = _get(o, collection) or []
            return any(inner(item) for item in items)

        return anything
