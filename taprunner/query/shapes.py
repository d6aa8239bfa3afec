"""Translations reused across queries that differ only in numbers (cone searches).

Clients repeat the same query with other numbers: a cone search around another
centre, a magnitude cut. Each text is new to :class:`~.caches.TranslationCache`,
and its parse and translation cost about a millisecond of CPU. A query's *shape*
is its text with its unsigned numeric literals taken out (outside strings,
quoted names and comments); for a shape seen before, :class:`ShapeCache` learns
which of its numbers the translator copies into the SQL unchanged, whatever
their value (a huge one and one near zero), and keeps the SQL as a template
with a slot for each such number.
A later query of that shape (and the same other numbers) is translated by
filling the template in: no parse, no translation.

Which numbers are slots is found by translating the query again with other
numbers (*probes*, two per number), never assumed: a number that decides the SQL
(``CONTAINS(...) = 1``, ``TOP 10``, ``ORDER BY 2``) changes it, makes the probe
fail, or does not appear in it as written, and stays part of the key. A slot
must appear exactly once, as written, in both probes' SQL, the probes and the
query itself must give the same template and the same columns, and the
query's own SQL must be the template filled with its numbers. Each number keeps
its lexical form (``9.9``, ``.9``, ``9e-9``...) in the key, so a filled
number reads as it would have been translated. Integers are never slots: the
translator reads some (TOP, OFFSET, ``ORDER BY 2``, ``CONTAINS(...) = 1``), and
a value on the other side of a test (a TOP above MAXREC) would go unnoticed.
Learning costs ``2 n + 3`` translations of a shape of ``n`` numbers (at most
:data:`MAX_NUMBERS`), only at its second sight; one-off queries pay a digest.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from taprunner.adql.model import AdqlError, Catalog, Translation

__all__ = ["MAX_NUMBERS", "Shape", "ShapeCache", "shape_of"]

#: Shapes with more numbers than this are not learnt (their probes cost more).
MAX_NUMBERS = 12
#: Longest SQL kept as a template (characters).
MAX_SQL = 16 * 1024

# Skipped: string literals, quoted names, comments. Taken: unsigned numbers not
# glued to a name or another number (``t1``, ``1a``, ``0x1F`` stay in the shape).
_SCAN = re.compile(
    r"'(?:[^']|'')*'?"
    r'|"(?:[^"]|"")*"?'
    r"|--[^\n]*"
    r"|/\*.*?(?:\*/|\Z)"
    r"|(?<![\w.$])((?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(?![\w.$])",
    re.S,
)
_DIGITS = re.compile(r"\d+")
_MARK = "\0"


def _form(number: str) -> str:
    """The lexical form of ``number``: its runs of digits as ``9``."""
    return _DIGITS.sub("9", number)


@dataclass(frozen=True, slots=True)
class Shape:
    """A query's text without its numbers, and its numbers in order."""

    parts: tuple[str, ...]  # text around the numbers (len(numbers) + 1)
    numbers: tuple[str, ...]

    def text(self, numbers: Sequence[str]) -> str:
        """The query with ``numbers`` in place of its own."""
        out = [self.parts[0]]
        for number, part in zip(numbers, self.parts[1:], strict=True):
            out += [number, part]
        return "".join(out)

    def key(self, fixed: frozenset[int], extra: str) -> bytes:
        """The cache key: the text with the numbers of ``fixed`` as written and
        the others as their form (and ``extra``: what else decides the SQL)."""
        marks = [
            number if i in fixed else _MARK + _form(number) + _MARK
            for i, number in enumerate(self.numbers)
        ]
        text = self.text(marks).encode("utf-8", "surrogatepass")
        hashed = hashlib.blake2b(extra.encode(), digest_size=20)  # a key, not a MAC
        hashed.update(text)
        return hashed.digest()


def shape_of(adql: str) -> Shape | None:
    """The shape of ``adql`` (None: no numbers, too many, or a NUL in it)."""
    if _MARK in adql:
        return None
    parts: list[str] = []
    numbers: list[str] = []
    last = 0
    for match in _SCAN.finditer(adql):
        if match.group(1) is not None:
            parts.append(adql[last : match.start(1)])
            numbers.append(match.group(1))
            last = match.end(1)
    if not numbers or len(numbers) > MAX_NUMBERS:
        return None
    parts.append(adql[last:])
    return Shape(tuple(parts), tuple(numbers))


@dataclass(frozen=True, slots=True)
class _Template:
    """SQL around the slots; ``slots[i]``: the number filling gap ``i``."""

    fragments: tuple[str, ...]
    slots: tuple[int, ...]
    translation: Translation

    def fill(self, numbers: Sequence[str] | dict[int, str]) -> str:
        out = [self.fragments[0]]
        for slot, fragment in zip(self.slots, self.fragments[1:], strict=True):
            out += [numbers[slot], fragment]
        return "".join(out)


@dataclass(frozen=True, slots=True)
class _Entry:
    catalog: Catalog
    fixed: frozenset[int]  # numbers that are not slots
    template: _Template | None  # None: the shape is not worth it


Translate = Callable[[str], Translation]


def _sentinel(number: str, index: int, probe: int) -> str | None:
    """A number of ``number``'s form, unlike any other in a query: its runs of
    digits become ``7``, ``probe``, ``index`` and 3s (at least 6 digits long).

    Probe 1 is huge; probe 2 is near zero (its runs zeros but the last, which
    is a fraction's or an exponent's), so that a value-dependent translation
    (DISTANCE's containments for 0 to 90 degrees only) differs between them.
    None for probe 2 of a number whose only run is before its dot (``5.``)."""
    runs = _DIGITS.findall(number)
    made = [f"7{probe}{index:02d}{'3' * max(2, len(run) - 4)}" for run in runs]
    if probe == 2:
        if len(runs) == 1 and not number.startswith("."):
            return None
        made = ["0" * len(run) for run in made[:-1]] + ["0000" + made[-1]]
    each = iter(made)
    return _DIGITS.sub(lambda _m: next(each), number)


def _template(sql: str, sentinels: dict[int, str]) -> tuple[str, ...] | None:
    """``sql`` cut at each sentinel, in the order they appear, or None unless
    each appears exactly once (``fragments``, then the slot order after a NUL)."""
    found = []
    for index, sentinel in sentinels.items():
        at = sql.find(sentinel)
        if at < 0 or sql.find(sentinel, at + 1) >= 0:
            return None
        found.append((at, index, sentinel))
    found.sort()
    fragments, last = [], 0
    for at, _, sentinel in found:
        fragments.append(sql[last:at])
        last = at + len(sentinel)
    fragments.append(sql[last:])
    return (*fragments, _MARK + ",".join(str(index) for _, index, _ in found))


def _split(cut: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[int, ...]]:
    order = cut[-1][1:]
    return cut[:-1], tuple(int(i) for i in order.split(",")) if order else ()


def _scoped(extra: str, catalog: Catalog) -> str:
    """``extra`` for ``catalog`` only: each catalogue object (a session role's,
    a job's with uploads) keeps its own shapes, none evicts another's. An
    entry holds its catalogue, so no live entry's ``id`` is reused; a shape
    seen once under a dead one's only passes on which numbers are no slots,
    which :meth:`ShapeCache._build` checks again."""
    return f"{extra}\0{id(catalog)}"


class ShapeCache:
    """Templates of recent shapes per catalogue object (see the module's text).

    Used from the event loop (:meth:`lookup`) and the translator threads
    (:meth:`learn`), hence the lock. Bounded by count (``size`` shapes and
    ``size`` shapes seen once).
    """

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()
        #: Shapes seen once (by key with no number fixed): learnt at the second.
        self._seen: OrderedDict[bytes, frozenset[int] | None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, shape: Shape, catalog: Catalog, extra: str) -> Translation | None:
        """The translation of ``shape``'s query from a learnt template, if any."""
        extra = _scoped(extra, catalog)
        with self._lock:
            fixed = self._seen.get(shape.key(frozenset(), extra))
            if fixed is None:
                return None
            entry = self._entries.get(shape.key(fixed, extra))
            if entry is None or entry.catalog is not catalog or entry.template is None:
                return None
        template = entry.template
        original = template.translation
        return Translation(
            sql=template.fill(shape.numbers),
            columns=original.columns,
            tables=original.tables,
        )

    def learn(
        self,
        shape: Shape,
        catalog: Catalog,
        extra: str,
        translation: Translation,
        translate: Translate,
    ) -> None:
        """After ``shape``'s query was translated (``translation``): note the
        shape, and at its second sight probe it (``translate``, on this thread)
        and keep its template. Never raises for a probe's failure."""
        extra = _scoped(extra, catalog)
        loose = shape.key(frozenset(), extra)
        with self._lock:
            known = loose in self._seen
            fixed = self._seen.get(loose)
            if not known:
                self._remember(loose, None)
                return
            if fixed is not None:
                entry = self._entries.get(shape.key(fixed, extra))
                if entry is not None and entry.catalog is catalog:
                    return
        if fixed is None:
            fixed = frozenset(
                i
                for i in range(len(shape.numbers))
                if not self._slot(shape, i, translation, translate)
            )
        template = self._build(shape, fixed, translation, translate)
        with self._lock:
            self._remember(loose, fixed)
            key = shape.key(fixed, extra)
            self._entries[key] = _Entry(catalog, fixed, template)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def _remember(self, loose: bytes, fixed: frozenset[int] | None) -> None:
        self._seen[loose] = fixed
        self._seen.move_to_end(loose)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)

    @staticmethod
    def _probe(
        shape: Shape, slots: Sequence[int], probe: int, translate: Translate
    ) -> tuple[tuple[str, ...], Translation] | None:
        """The query translated with sentinels for ``slots``, cut at them."""
        sentinels = {}
        for i in slots:
            sentinel = _sentinel(shape.numbers[i], i, probe)
            if sentinel is None:
                return None
            sentinels[i] = sentinel
        numbers = [sentinels.get(i, n) for i, n in enumerate(shape.numbers)]
        try:
            translation = translate(shape.text(numbers))
        except (AdqlError, RecursionError, ValueError):
            return None
        if len(translation.sql) > MAX_SQL:
            return None
        cut = _template(translation.sql, sentinels)
        return None if cut is None else (cut, translation)

    def _slot(
        self, shape: Shape, index: int, translation: Translation, translate: Translate
    ) -> bool:
        """Whether number ``index`` alone is copied to the SQL unchanged (never
        an integer: integers decide SQL, as TOP, ORDER BY 2, ``= 1`` do)."""
        number = shape.numbers[index]
        if number.isdigit():
            return False
        first = self._probe(shape, [index], 1, translate)
        second = self._probe(shape, [index], 2, translate)
        if first is None or second is None or first[0] != second[0]:
            return False
        fragments, order = _split(first[0])
        own = _Template(fragments, order, translation)
        return own.fill({index: number}) == translation.sql

    def _build(
        self,
        shape: Shape,
        fixed: frozenset[int],
        translation: Translation,
        translate: Translate,
    ) -> _Template | None:
        """The template of the slots (the numbers not ``fixed``), checked."""
        slots = [i for i in range(len(shape.numbers)) if i not in fixed]
        if not slots:
            return None
        probes = [self._probe(shape, slots, probe, translate) for probe in (1, 2)]
        if probes[0] is None or probes[1] is None or probes[0][0] != probes[1][0]:
            return None
        if any(
            p[1].columns != translation.columns or p[1].tables != translation.tables
            for p in probes
            if p is not None
        ):
            return None
        fragments, order = _split(probes[0][0])
        template = _Template(fragments, order, translation)
        if template.fill(shape.numbers) != translation.sql:
            return None
        return template
