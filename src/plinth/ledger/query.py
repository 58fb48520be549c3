"""The run search language: ``where`` filters, ``order_by`` keys and extra columns, parsed.

Pure Python, no SQL: :mod:`plinth.ledger.search` compiles the trees made here. Grammar::

    where      := and_expr ("or" and_expr)*
    and_expr   := atom ("and" atom)*
    atom       := "(" where ")" | column OP value
    column     := ("metrics" | "params" | "tags") "." key | ["attributes" "."] attribute
    key        := word | `back-quoted` | "double-quoted"
    OP         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="
    value      := number | 'single-quoted string' ('' inside stands for ')
    order item := column ["asc" | "desc"]

Words are letters, digits and ``_ . / -``; keywords are case-insensitive. Errors are
:class:`~plinth.errors.UsageError` with a caret under the column of the problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, cast

from plinth.entities import RUN_STATUSES
from plinth.errors import UsageError

__all__ = [
    "ATTRIBUTES",
    "EXAMPLE",
    "And",
    "Column",
    "Comparison",
    "Node",
    "Or",
    "OrderKey",
    "named_columns",
    "parse_columns",
    "parse_order_by",
    "parse_where",
]

EXAMPLE = "metrics.auc > 0.8 and params.lr = 0.1 and tags.team = 'ml' and status = 'finished'"

Kind = Literal["metric", "param", "tag", "attribute"]
Op = Literal["=", "!=", "<", "<=", ">", ">="]

#: Attribute name -> its type: "text", "time" (epoch ms, or an ISO date in quotes) or "status".
_TEXT = ("id", "name", "experiment", "experiment_id", "user", "parent_run_id")
ATTRIBUTES: dict[str, str] = {"status": "status", "start_time": "time", "end_time": "time"}
ATTRIBUTES.update(dict.fromkeys(_TEXT, "text"))
_PREFIXES: dict[str, Kind] = {
    **dict.fromkeys(("metrics", "metric"), "metric"),
    **dict.fromkeys(("params", "param"), "param"),
    **dict.fromkeys(("tags", "tag"), "tag"),
    **dict.fromkeys(("attributes", "attribute", "attr", "run"), "attribute"),
}
_PLURAL: dict[Kind, str] = {"metric": "metrics", "param": "params", "tag": "tags"}
_LABELS = {"where": "where expression", "order_by": "order_by key", "columns": "columns"}
_SYNONYMS: dict[str, Op] = {"==": "=", "<>": "!="}


@dataclass(frozen=True)
class Column:
    """A value of a run: a metric's latest value, a param, a tag or a run attribute."""

    kind: Kind
    key: str

    @property
    def name(self) -> str:
        """How the column is written back: ``metrics.auc``, ``params.lr``, ``status``."""
        if self.kind == "attribute":
            return self.key
        key = self.key if re.fullmatch(r"[\w./-]+", self.key) else f"`{self.key}`"
        return f"{_PLURAL[self.kind]}.{key}"


@dataclass(frozen=True)
class Comparison:
    column: Column
    op: Op
    #: A number (int or float), or a string; ``text`` is the literal as written.
    value: float | int | str
    text: str


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


Node = Comparison | And | Or


@dataclass(frozen=True)
class OrderKey:
    column: Column
    descending: bool = False


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
  | (?P<string>'(?:[^']|'')*')
  | (?P<badstring>'(?:[^']|'')*$)
  | (?P<quoted>`[^`]*`|"[^"]*")
  | (?P<badquoted>[`"].*$)
  | (?P<op>==|!=|<>|<=|>=|=|<|>)
  | (?P<paren>[()])
  | (?P<comma>,)
  | (?P<dot>\.)
  | (?P<word>[A-Za-z_][\w/-]*)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    type: str
    text: str
    pos: int


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.tokens = self._tokenize()
        self.i = 0

    def fail(self, pos: int, problem: str, hint: str | None = None) -> UsageError:
        return UsageError(
            f"cannot parse the {_LABELS[self.what]} at column {pos + 1}: {problem}\n"
            f"  {self.text}\n  {' ' * pos}^",
            hint=hint or f"example: {EXAMPLE}",
            field=self.what,
        )

    def _tokenize(self) -> list[_Token]:
        tokens: list[_Token] = []
        pos = 0
        while pos < len(self.text):
            # A lexical error becomes a token, so that a grammar error before it wins.
            match = _TOKEN.match(self.text, pos)
            if match is None:
                tokens.append(_Token("error", f"unexpected character {self.text[pos]!r}", pos))
                return tokens
            kind = match.lastgroup
            assert kind is not None
            if kind in ("badstring", "badquoted"):
                quote = self.text[pos]
                what = "string" if quote == "'" else "name"
                tokens.append(_Token("error", f"this {what} has no closing {quote}", pos))
                return tokens
            if kind != "space":
                tokens.append(_Token(kind, match.group(), pos))
            pos = match.end()
        tokens.append(_Token("end", "", len(self.text)))
        return tokens

    @property
    def tok(self) -> _Token:
        token = self.tokens[self.i]
        if token.type == "error":
            raise self.fail(token.pos, token.text)
        return token

    def is_word(self, *words: str) -> bool:
        return self.tok.type == "word" and self.tok.text.lower() in words

    def take(self) -> _Token:
        token = self.tok
        self.i += 1
        return token

    def expect_end(self) -> None:
        if self.tok.type != "end":
            joinable = self.tok.type in ("word", "quoted", "paren")
            hint = f"join conditions with 'and' or 'or'; example: {EXAMPLE}" if joinable else None
            raise self.fail(self.tok.pos, f"unexpected {self.tok.text!r}", hint)

    # -- grammar ----------------------------------------------------------------------------

    def or_expr(self) -> Node:
        items = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Node:
        items = [self.atom()]
        while self.is_word("and"):
            self.take()
            items.append(self.atom())
        return items[0] if len(items) == 1 else And(tuple(items))

    def atom(self) -> Node:
        if self.tok.type == "paren" and self.tok.text == "(":
            opening = self.take()
            node = self.or_expr()
            if not (self.tok.type == "paren" and self.tok.text == ")"):
                raise self.fail(
                    self.tok.pos, f"expected ')' to close the '(' at column {opening.pos + 1}"
                )
            self.take()
            return node
        return self.comparison()

    def comparison(self) -> Comparison:
        column, start = self.column()
        if self.tok.type != "op":
            raise self.fail(
                self.tok.pos, f"expected an operator (= != < <= > >=) after {column.name}"
            )
        op_text = self.take().text
        op = _SYNONYMS.get(op_text) or cast(Op, op_text)
        value_tok = self.tok
        value: float | int | str
        if value_tok.type == "number":
            self.take()
            is_float = any(c in value_tok.text for c in ".eE")
            value = float(value_tok.text) if is_float else int(value_tok.text)
        elif value_tok.type == "string":
            self.take()
            value = value_tok.text[1:-1].replace("''", "'")
        elif value_tok.type == "quoted" and value_tok.text.startswith('"'):
            raise self.fail(
                value_tok.pos,
                "double quotes name keys; write a string value in single quotes",
                f"example: tags.team = '{value_tok.text[1:-1]}'",
            )
        else:
            shown = "the end" if value_tok.type == "end" else repr(value_tok.text)
            raise self.fail(
                value_tok.pos,
                f"expected a value (a number or a 'quoted string') after {op_text!r}, "
                f"found {shown}",
            )
        return self.check(Comparison(column, op, value, value_tok.text), start, value_tok.pos)

    def column(self) -> tuple[Column, int]:
        start = self.tok
        if start.type == "quoted":
            raise self.fail(
                start.pos,
                "a quoted name needs a prefix: metrics., params. or tags.",
                f"example: params.{start.text} = 'x'",
            )
        if start.type != "word":
            shown = "the end" if start.type == "end" else repr(start.text)
            raise self.fail(
                start.pos,
                f"expected a name like metrics.auc, params.lr, tags.team or status, found {shown}",
            )
        self.take()
        word, prefix = start.text, start.text.lower()
        if self.tok.type == "dot" and prefix in _PREFIXES:
            self.take()
            kind = _PREFIXES[prefix]
            key = self.key(word)
            if kind == "attribute":
                return self.attribute(key, start.pos), start.pos
            return Column(kind, key), start.pos
        if self.tok.type == "dot":
            raise self.fail(
                start.pos,
                f"unknown prefix {word!r}",
                "prefix a name with metrics., params., tags. or attributes.",
            )
        if prefix in _PREFIXES:
            raise self.fail(self.tok.pos, f"expected '.' and a key after {word!r}")
        return self.attribute(word, start.pos), start.pos

    def key(self, prefix: str) -> str:
        token = self.take()
        if token.type == "string":
            raise self.fail(
                token.pos,
                "single quotes are for values; quote a key with backticks or double quotes",
                f"example: {prefix}.`{token.text[1:-1]}`",
            )
        if token.type == "quoted":
            key = token.text[1:-1]
            if not key.strip():
                raise self.fail(token.pos, "an empty name")
            return key
        if token.type != "word":
            raise self.fail(token.pos, f"expected a key after '{prefix}.'")
        parts = [token.text]
        while self.tok.type == "dot" and self.tokens[self.i + 1].type == "word":  # a.b.c
            parts.append(self.take().text + self.take().text)
        return "".join(parts)

    def attribute(self, name: str, pos: int) -> Column:
        key = name.lower()
        if key not in ATTRIBUTES:
            known = ", ".join(ATTRIBUTES)
            raise self.fail(
                pos,
                f"unknown attribute {name!r}",
                f"attributes are {known}; prefix metrics., params. or tags. for the others",
            )
        return Column("attribute", key)

    def check(self, comparison: Comparison, start: int, value_pos: int) -> Comparison:
        """Type checks, with the caret under the value; time attributes take ISO dates."""
        column, value = comparison.column, comparison.value
        kind = ATTRIBUTES.get(column.key) if column.kind == "attribute" else column.kind
        if kind == "metric" and isinstance(value, str):
            raise self.fail(value_pos, f"{column.name} is a number; compare it with a number")
        if kind == "text" and not isinstance(value, str):
            raise self.fail(
                value_pos,
                f"{column.name} is text; quote the value",
                f"example: {column.name} = '{comparison.text}'",
            )
        if kind == "status" and (comparison.op not in ("=", "!=") or value not in RUN_STATUSES):
            raise self.fail(
                value_pos if comparison.op in ("=", "!=") else start,
                f"compare status with = or != and one of {', '.join(RUN_STATUSES)}",
                "example: status = 'finished'",
            )
        if kind == "time" and isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise self.fail(
                    value_pos,
                    f"{column.name} takes epoch milliseconds or an ISO date, not {value!r}",
                    f"example: {column.name} > '2026-01-31' or {column.name} > 1769817600000",
                ) from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            ms = int(moment.timestamp() * 1000)
            return Comparison(column, comparison.op, ms, comparison.text)
        return comparison


def parse_where(text: str | None) -> Node | None:
    """The tree of a ``where`` expression; None when it is empty."""
    if text is None or not text.strip():
        return None
    parser = _Parser(text, "where")
    node = parser.or_expr()
    parser.expect_end()
    return node


def parse_order_by(items: Iterable[str]) -> list[OrderKey]:
    """``["metrics.auc DESC", "start_time"]`` -> order keys (ascending unless ``desc``).

    An item may also hold several keys separated by commas.
    """
    keys: list[OrderKey] = []
    for item in items:
        parser = _Parser(item, "order_by")
        for column in _comma_list(parser, "example: metrics.auc DESC, start_time", order=True):
            keys.append(column)
    return keys


def parse_columns(items: Iterable[str]) -> list[Column]:
    """``["metrics.auc,params.lr", "tags.team"]`` -> columns, each once, in order."""
    columns: list[Column] = []
    for item in items:
        if item.strip():
            parser = _Parser(item, "columns")
            for key in _comma_list(parser, "example: metrics.auc,params.lr", order=False):
                if key.column not in columns:
                    columns.append(key.column)
    return columns


def _comma_list(parser: _Parser, example: str, *, order: bool) -> list[OrderKey]:
    found: list[OrderKey] = []
    while True:
        column, _ = parser.column()
        descending = False
        if order and parser.is_word("asc", "desc"):
            descending = parser.take().text.lower() == "desc"
        found.append(OrderKey(column, descending))
        if parser.tok.type != "comma":
            break
        parser.take()
    if parser.tok.type != "end":
        raise parser.fail(parser.tok.pos, f"unexpected {parser.tok.text!r}", example)
    return found


def named_columns(
    where: str | None, order_by: Iterable[str] = (), columns: Iterable[str] = ()
) -> list[Column]:
    """The metrics, params and tags ``where`` and ``order_by`` name, then ``columns`` (run
    attributes too), each once and in that order: what a search result shows."""

    def walk(node: Node | None) -> list[Column]:
        if node is None:
            return []
        if isinstance(node, Comparison):
            return [node.column]
        return [c for item in node.items for c in walk(item)]

    named = [c for c in walk(parse_where(where)) if c.kind != "attribute"]
    named += [k.column for k in parse_order_by(order_by) if k.column.kind != "attribute"]
    named += parse_columns(columns)
    return list(dict.fromkeys(named))
