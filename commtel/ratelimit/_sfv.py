"""A linear parser for HTTP structured fields (RFC 9651, formerly RFC 8941): lists and dictionaries.

Enough of the RFC for the IETF ``RateLimit`` and ``RateLimit-Policy`` headers: lists
and dictionaries of items or inner lists, each with parameters; bare items are
integers, decimals, strings, tokens, byte sequences, booleans and dates. Display
strings are rejected (the field then fails to parse, as the RFC asks).

Time is linear in the field's length whatever it holds: each lexical element is one
anchored regular-expression match without nested repetition, and the Python loop
runs once per element, never per character. A field with more than
:data:`MAX_ELEMENTS` keys and items altogether (or :data:`MAX_MEMBERS` members,
:data:`MAX_PARAMS` parameters on one item) fails to parse: far beyond any
rate-limit policy, and it bounds the work a hostile server can ask for.
"""

from __future__ import annotations

import base64
import binascii
import re

from dataclasses import dataclass, field
from typing import NoReturn, TypeAlias


__all__ = ["MAX_ELEMENTS", "MAX_MEMBERS", "MAX_PARAMS", "Item", "ParseError", "Token", "parse_dictionary", "parse_list"]

#: Members (list entries or dictionary keys) accepted in one field.
MAX_MEMBERS = 32
#: Parameters accepted on one item or inner list.
MAX_PARAMS = 16
#: Keys and bare items accepted in one field altogether.
MAX_ELEMENTS = 256
#: Characters accepted in one string, escapes included (the RFC asks for at least 1024).
MAX_STRING = 1024


class Token(str):
    """A structured-field token (unquoted, e.g. ``default`` or ``*``), told apart from a string."""

    __slots__ = ()


BareItem: TypeAlias = int | float | str | bytes | bool
Params: TypeAlias = dict[str, BareItem]


@dataclass(frozen=True, slots=True)
class Item:
    """One member: a bare item (or, for an inner list, a tuple of items) and its parameters."""

    value: BareItem | tuple[Item, ...]
    params: Params = field(default_factory=dict)


class ParseError(ValueError):
    """The field is not a valid structured field; the RFC says to ignore all of it."""


_OWS = re.compile(r"[ \t]*")
_SP = re.compile(r" *")
_KEY = re.compile(r"[a-z*][a-z0-9_.*-]*")
# At most one digit too many is read, so a run of 64 K digits costs no more than a short one.
_NUMBER = re.compile(r"-?([0-9]{1,16})(?:\.([0-9]{1,4}))?")
_NOT_PRINTABLE = re.compile(r"[^\x20-\x7e]")
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")
_UNESCAPE = re.compile(r"\\([\"\\])")


class _Parser:
    __slots__ = ("budget", "pos", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.budget = MAX_ELEMENTS

    def spend(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            self.error(f"more than {MAX_ELEMENTS} elements")

    def error(self, what: str) -> NoReturn:
        msg = f"{what} at character {self.pos}"
        raise ParseError(msg)

    def peek(self) -> str:
        return self.text[self.pos : self.pos + 1]

    def skip(self, pattern: re.Pattern[str]) -> None:
        match = pattern.match(self.text, self.pos)
        if match:
            self.pos = match.end()

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def members_separator(self) -> None:
        """After a member: consume ``OWS , OWS`` unless at the end (a trailing comma fails)."""
        self.skip(_OWS)
        if self.at_end():
            return
        if self.peek() != ",":
            self.error("expected ','")
        self.pos += 1
        self.skip(_OWS)
        if self.at_end():
            self.error("trailing ','")

    def item_or_inner_list(self) -> Item:
        if self.peek() == "(":
            return self.inner_list()
        value = self.bare_item()
        return Item(value, self.params())

    def inner_list(self) -> Item:
        self.pos += 1
        items: list[Item] = []
        while True:
            self.skip(_SP)
            if self.peek() == ")":
                self.pos += 1
                return Item(tuple(items), self.params())
            if len(items) >= MAX_MEMBERS:
                self.error("too many inner-list members")
            value = self.bare_item()
            items.append(Item(value, self.params()))
            if self.peek() not in {" ", ")"}:
                self.error("expected ' ' or ')' in an inner list")

    def params(self) -> Params:
        params: Params = {}
        while self.peek() == ";":
            self.pos += 1
            self.skip(_SP)
            key = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.pos += 1
                value = self.bare_item()
            params[key] = value
            if len(params) > MAX_PARAMS:
                self.error("too many parameters")
        return params

    def key(self) -> str:
        self.spend()
        match = _KEY.match(self.text, self.pos)
        if not match:
            self.error("expected a key")
        self.pos = match.end()
        return match.group()

    def bare_item(self) -> BareItem:
        self.spend()
        first = self.peek()
        if first == "-" or first.isdigit():
            return self.number()
        if first == '"':
            return self.string()
        if first == ":":
            return self.byte_sequence()
        if first == "?":
            return self.boolean()
        if first == "@":
            self.pos += 1
            date = self.number()
            if not isinstance(date, int):
                self.error("a date must be an integer")
            return date
        match = _TOKEN.match(self.text, self.pos)
        if not match:
            self.error("expected an item")
        self.pos = match.end()
        return Token(match.group())

    def number(self) -> int | float:
        match = _NUMBER.match(self.text, self.pos)
        if not match:
            self.error("expected a number")
        whole, fraction = match.groups()
        if self.text[match.end() : match.end() + 1].isdigit():
            self.error("number too long")
        if fraction is None:
            if len(whole) > 15:
                self.error("integer longer than 15 digits")
            self.pos = match.end()
            return int(match.group())
        if len(whole) > 12 or len(fraction) > 3:
            self.error("decimal beyond 12.3 digits")
        self.pos = match.end()
        return float(match.group())

    def string(self) -> str:
        text, start = self.text, self.pos + 1
        limit = min(len(text), start + MAX_STRING)
        end = text.find('"', start, limit + 1)
        # A quote preceded by an odd run of backslashes is escaped: look for the next one.
        # Each backslash is walked over at most once, so this stays linear.
        while end != -1:
            before = end
            while before > start and text[before - 1] == "\\":
                before -= 1
            if (end - before) % 2 == 0:
                break
            end = text.find('"', end + 1, limit + 1)
        if end == -1:
            self.error(f"unterminated string (or longer than {MAX_STRING} characters)")
        content = text[start:end]
        # Only \" and \\ are escapes: once both are taken out, no backslash may be left.
        if _NOT_PRINTABLE.search(content) or "\\" in content.replace("\\\\", "").replace('\\"', ""):
            self.error("invalid string")
        self.pos = end + 1
        return _UNESCAPE.sub(r"\1", content) if "\\" in content else content

    def byte_sequence(self) -> bytes:
        match = _BYTES.match(self.text, self.pos)
        if not match:
            self.error("invalid byte sequence")
        self.pos = match.end()
        try:
            return base64.b64decode(match.group(1), validate=True)
        except (binascii.Error, ValueError):
            self.error("invalid base64")

    def boolean(self) -> bool:
        value = self.text[self.pos + 1 : self.pos + 2]
        if value not in {"0", "1"}:
            self.error("invalid boolean")
        self.pos += 2
        return value == "1"


def _start(text: str) -> _Parser:
    """A parser past the leading spaces; trailing ones are skipped after the last member."""
    parser = _Parser(text)
    parser.skip(_SP)
    return parser


def parse_list(text: str) -> list[Item]:
    """Parse a List field (``"a";x=1, "b";x=2``); raises :class:`ParseError` if it is not one."""
    parser = _start(text)
    members: list[Item] = []
    while not parser.at_end():
        if len(members) >= MAX_MEMBERS:
            parser.error("too many members")
        members.append(parser.item_or_inner_list())
        parser.members_separator()
    return members


def parse_dictionary(text: str) -> dict[str, Item]:
    """Parse a Dictionary field (``limit=100, remaining=0``); raises :class:`ParseError` if it is not one."""
    parser = _start(text)
    members: dict[str, Item] = {}
    while not parser.at_end():
        key = parser.key()
        if parser.peek() == "=":
            parser.pos += 1
            member = parser.item_or_inner_list()
        else:
            member = Item(True, parser.params())  # noqa: FBT003 - a bare key means true
        members[key] = member
        if len(members) > MAX_MEMBERS:
            parser.error("too many members")
        parser.members_separator()
    return members
