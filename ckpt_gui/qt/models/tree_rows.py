"""Which rows the tree shows under each parent: filtered, sorted, long levels in ranges.

Qt-free, so it can run on a worker thread. Why it exists: ``QTreeView`` lays out every
row of every expanded level after each sort or filter and calls the Python model for
each (``index``, ``flags``), about 6 µs a row; a flat 200,000-tensor checkpoint froze
the window for seconds per click. Two things keep every GUI-thread step short:

* **Ranges.** A parent with more than ``BUCKET_LIMIT`` shown children shows them as
  collapsible range rows (``RangeNode``, "w0000000 … w0000999") of ``BUCKET_SIZE`` rows
  each, as debuggers and file managers do, so no level the view lays out is long. The
  ranges cut the shown order (sorted, filtered): range 0 of a size-sorted level holds
  the largest rows.
* **Background preparation.** ``prepare_job`` computes the filter's visible set and,
  for every long level, the sorted and filtered child list with each child's position.
  It is a generator that works in chunks of ``CHUNK`` items (the GIL changes hands
  between chunks; one long C call such as ``list.sort`` of 200,000 tuples would hold
  it for half a second even on a worker thread): sorting uses numpy's ``argsort``
  (which releases the GIL) on keys built chunk by chunk. The model applies the
  result in one layout change that touches only the few rows a view shows.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import attrgetter
from typing import Any

import numpy as np

from ckpt_gui.core.tree.build import ModuleNode

BUCKET_LIMIT = 5000  # a parent showing more children than this shows them in ranges
BUCKET_SIZE = 1000  # rows per range
CHUNK = 10_000  # items per step of a job (the GIL changes hands between steps)

# Column numbers (tree_style.Column), repeated here to keep this module free of Qt.
NAME, SHAPE, DTYPE, PARAMETERS, SIZE, FILE = range(6)

Job = Generator[None, None, Any]
_parameters = attrgetter("parameters")
_nbytes = attrgetter("nbytes")
_tensor_count = attrgetter("tensor_count")
_parent = attrgetter("parent")


class RangeNode(ModuleNode):
    """Rows ``start`` .. ``start + len(members)`` of a long level, shown as one row.

    Its ``parent`` is the real parent; its ``children`` (and ``members``, which the
    memory panel reads) are the rows it stands for, in the shown order. The model keeps
    one object per (parent, range number) for the model's life: Qt indexes point at it.
    Totals are summed on first use (only the ranges a view paints are asked).
    """

    __slots__ = ("_sums", "members", "number", "start", "status_cache")

    def __init__(self, parent: ModuleNode, number: int) -> None:
        super().__init__("", parent.path, parent)
        self.number = number
        self.row = number
        self.start = number * BUCKET_SIZE
        self.members: list[ModuleNode] = []
        self._sums: tuple[int, int, int] | None = None
        self.status_cache: tuple[str | None] | None = None

    def fill(self, shown: list[ModuleNode]) -> None:
        """Stand for this range of ``shown`` (the parent's shown children)."""
        members = shown[self.start : self.start + BUCKET_SIZE]
        self.members = self.children = members
        self.name = f"{members[0].name} … {members[-1].name}" if members else ""
        self.path = f"{members[0].path} … {members[-1].path}" if members else ""
        self._sums = None
        self.status_cache = None

    def _totals(self) -> tuple[int, int, int]:
        if self._sums is None:
            members = self.members
            self._sums = (
                sum(map(_parameters, members)),
                sum(map(_nbytes, members)),
                sum(map(_tensor_count, members)),
            )
        return self._sums

    # ModuleNode keeps totals in slots; a range computes them from its members.
    @property
    def parameters(self) -> int:
        return self._totals()[0]

    @parameters.setter
    def parameters(self, _value: int) -> None:
        pass  # ModuleNode.__init__ sets 0

    @property
    def nbytes(self) -> int:
        return self._totals()[1]

    @nbytes.setter
    def nbytes(self, _value: int) -> None:
        pass

    @property
    def tensor_count(self) -> int:
        return self._totals()[2]

    @tensor_count.setter
    def tensor_count(self, _value: int) -> None:
        pass


class Level:
    """One long parent's shown children and where each one is among them.

    ``rows`` maps ``id(child)`` to its position (None: the children in file order, the
    position is ``child.row``); ``reverse`` reads the positions from the end (a
    descending sort shares the ascending order's positions).
    """

    __slots__ = ("reverse", "rows", "shown")

    def __init__(
        self, shown: list[ModuleNode], rows: dict[int, int] | None = None, reverse: bool = False
    ) -> None:
        self.shown = shown
        self.rows = rows
        self.reverse = reverse

    def position(self, node: ModuleNode) -> int | None:
        if self.rows is None:
            return node.row
        row = self.rows.get(id(node))
        if row is None or not self.reverse:
            return row
        return len(self.shown) - 1 - row

    @property
    def bucketed(self) -> bool:
        return len(self.shown) > BUCKET_LIMIT


class Matcher:
    """A case-insensitive predicate over dotted paths that can also test many at C speed.

    ``contains``: substring. ``glob``: ``*``/``?``/``[..]`` matched against the whole
    path or any dotted tail of it. ``regex``: ``re.search``. A bad regex raises
    ValueError.
    """

    def __init__(self, pattern: str, mode: str) -> None:
        self.needle: str | None = None
        self.regex: re.Pattern[str] | None = None
        if mode == "contains":
            self.needle = pattern.lower()
        elif mode == "glob":
            # translate() ends in \Z; searching from any dot keeps the match on a name boundary.
            self.regex = re.compile(r"(?:^|\.)(?:" + fnmatch.translate(pattern) + ")", re.I | re.S)
        elif mode == "regex":
            try:
                self.regex = re.compile(pattern, re.I)
            except re.error as exc:
                raise ValueError(f"invalid regular expression: {exc}") from None
        else:
            raise ValueError(f"unknown filter mode {mode!r}")

    def __call__(self, path: str) -> bool:
        if self.needle is not None:
            return self.needle in path.lower()
        assert self.regex is not None
        return self.regex.search(path) is not None

    def flags(self, paths: list[str], lowered: list[str]) -> Iterable[Any]:
        """Truthy per path (``paths`` as they are, ``lowered`` the same in lower case)."""
        if self.needle is not None:
            return map(str.__contains__, lowered, repeat(self.needle))
        assert self.regex is not None
        return map(self.regex.search, paths)


@dataclass
class TreeIndex:
    """Flat facts of one tree, built once per root (by the first job that needs them)."""

    root: ModuleNode
    nodes: list[ModuleNode]  # root.walk() without the root, depth first
    paths: list[str] = field(default_factory=list)
    lowered: list[str] = field(default_factory=list)
    tensor_ids: list[int] = field(default_factory=list)
    long_parents: list[ModuleNode] = field(default_factory=list)


def index_job(root: ModuleNode) -> Generator[None, None, TreeIndex]:
    nodes: list[ModuleNode] = []
    walk = root.walk()
    next(walk)  # the root itself
    for i, node in enumerate(walk):
        nodes.append(node)
        if not i % CHUNK:
            yield
    paths: list[str] = []
    lowered: list[str] = []
    tensor_ids: list[int] = []
    long_parents = [root] if len(root.children) > BUCKET_LIMIT else []
    for start in range(0, len(nodes), CHUNK):
        chunk = nodes[start : start + CHUNK]
        paths.extend(map(attrgetter("path"), chunk))
        lowered.extend(map(str.lower, paths[start:]))
        tensor_ids.extend(id(n) for n in chunk if n.tensor is not None)
        long_parents.extend(n for n in chunk if len(n.children) > BUCKET_LIMIT)
        yield
    return TreeIndex(root, nodes, paths, lowered, tensor_ids, long_parents)


def build_index(root: ModuleNode) -> TreeIndex:
    index: TreeIndex = run(index_job(root))
    return index


def run(job: Generator[None, None, Any]) -> Any:
    """Drive a job here and now (small trees: the GUI thread does it at once)."""
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value


# -- filtering ---------------------------------------------------------------------------------
def visible_job(
    index: TreeIndex,
    matches: Callable[[str], bool] | None,
    predicate: Callable[[ModuleNode], bool] | None,
) -> Generator[None, None, set[int] | None]:
    """ids of the nodes to show (None: all): matches, their ancestors, and the contents
    of matched modules (a match is a path match that also meets ``predicate``)."""
    if matches is None and predicate is None:
        return None
    visible: set[int] = set()
    nodes = index.nodes
    for start in range(0, len(nodes), CHUNK):
        stop = start + CHUNK
        hits = nodes[start:stop]
        if isinstance(matches, Matcher):
            hits = list(
                compress(hits, matches.flags(index.paths[start:stop], index.lowered[start:stop]))
            )
        elif matches is not None:
            hits = [n for n in hits if matches(n.path)]
        if predicate is not None:
            hits = list(filter(predicate, hits))
        if not hits:
            yield
            continue
        visible.update(map(id, hits))
        if matches is not None:
            for module in (n for n in hits if n.children):
                visible.update(map(id, module.walk()))
        for parent in set(map(_parent, hits)):
            while parent is not None and id(parent) not in visible:
                visible.add(id(parent))
                parent = parent.parent
        yield
    return visible


# -- sorting -----------------------------------------------------------------------------------
def order_job(children: list[ModuleNode], column: int) -> Generator[None, None, list[ModuleNode]]:
    """``children`` in ascending order of ``column`` (natural names; ties in file order)."""
    n = len(children)
    ranks: Any
    if column == NAME:
        names: list[str] = []
        for start in range(0, n, CHUNK):
            names.extend(map(attrgetter("name"), children[start : start + CHUNK]))
            yield
        digits = [i for i, name in enumerate(names) if name.isdigit()]
        yield
        if not digits:
            ranks = yield from _argsort_text([name.lower() for name in names])
        else:
            digit_set = set(digits)
            texts = [i for i in range(n) if i not in digit_set]
            numbers = [int(names[i]) for i in digits]
            if max(numbers) < 2**62:
                by_number = np.argsort(np.array(numbers, dtype=np.int64), kind="stable")
            else:
                by_number = np.array(sorted(range(len(numbers)), key=numbers.__getitem__))
            yield
            by_text = yield from _argsort_text([names[i].lower() for i in texts])
            ranks = np.concatenate(
                [
                    np.array(digits, dtype=np.int64)[by_number],
                    np.array(texts, dtype=np.int64)[by_text],
                ]
            )
    elif column in (PARAMETERS, SIZE):
        get = _parameters if column == PARAMETERS else _nbytes
        values = [get(c) for c in children]
        yield
        try:
            ranks = np.argsort(np.array(values, dtype=np.int64), kind="stable")
        except OverflowError:  # beyond int64: Python's integers
            ranks = sorted(range(n), key=values.__getitem__)
    elif column == SHAPE:
        shapes = [c.tensor.shape if c.tensor is not None else () for c in children]
        yield
        depth = max(map(len, shapes), default=0)
        # Tuples compare element by element, a prefix first: pad with -1 and lexsort.
        keys = [
            np.array([s[d] if len(s) > d else -1 for s in shapes], dtype=np.int64)
            for d in range(depth)
        ]
        yield
        ranks = np.lexsort(keys[::-1]) if keys else np.arange(n)
    else:
        attribute = "dtype" if column == DTYPE else "file"
        texts_of = [getattr(c.tensor, attribute) if c.tensor is not None else "" for c in children]
        yield
        ranks = yield from _argsort_text(texts_of)
    order = ranks.tolist() if isinstance(ranks, np.ndarray) else list(ranks)
    ordered: list[ModuleNode] = []
    for start in range(0, n, CHUNK):
        ordered.extend([children[i] for i in order[start : start + CHUNK]])
        yield
    return ordered


def _argsort_text(texts: list[str]) -> Generator[None, None, Any]:
    """Stable argsort of strings: the array is built in chunks, numpy sorts without the GIL."""
    if not texts:
        return np.arange(0)
    parts = []
    for start in range(0, len(texts), CHUNK):
        parts.append(np.array(texts[start : start + CHUNK], dtype=str))
        yield
    return np.argsort(np.concatenate(parts), kind="stable")


def rows_job(shown: list[ModuleNode]) -> Generator[None, None, dict[int, int]]:
    rows: dict[int, int] = {}
    for start in range(0, len(shown), CHUNK):
        rows.update(
            zip(map(id, shown[start : start + CHUNK]), range(start, start + CHUNK), strict=False)
        )
        yield
    return rows


# -- the whole preparation -----------------------------------------------------------------------
@dataclass(frozen=True)
class ViewSpec:
    """What the user asked the tree to show."""

    matches: Callable[[str], bool] | None = None
    predicate: Callable[[ModuleNode], bool] | None = None
    column: int = -1  # -1: file order
    descending: bool = False

    @property
    def filtering(self) -> bool:
        return self.matches is not None or self.predicate is not None


@dataclass
class Prepared:
    """A job's answer: everything the model swaps in for ``spec``, in one layout change."""

    spec: ViewSpec
    root: ModuleNode
    index: TreeIndex | None  # None: not needed (file order, no filter)
    visible: set[int] | None
    visible_tensors: int
    levels: dict[int, Level]  # per long parent id
    # New ascending orders of long levels, for the model's cache: (parent id, column) ->
    # (order, positions).
    orders: dict[tuple[int, int], tuple[list[ModuleNode], dict[int, int]]]


OrderCache = dict[tuple[int, int], tuple[list[ModuleNode], dict[int, int]]]


def needs_work(index: TreeIndex | None, spec: ViewSpec, orders: OrderCache) -> bool:
    """Whether ``prepare_job`` for ``spec`` has more to do than dictionary lookups."""
    if spec.column < 0 and not spec.filtering:
        return False  # file order, unfiltered: nothing to compute (no index either)
    if index is None or spec.filtering:
        return True
    return any((id(p), spec.column) not in orders for p in index.long_parents)


def prepare_job(
    root: ModuleNode, index: TreeIndex | None, spec: ViewSpec, orders: OrderCache
) -> Generator[None, None, Prepared]:
    """Compute what ``spec`` shows of ``root``; ``orders`` is read, not changed."""
    if spec.column < 0 and not spec.filtering and (index is None or index.root is not root):
        return Prepared(spec, root, None, None, 0, {}, {})  # the model shows file order
    if index is None or index.root is not root:
        index = yield from index_job(root)
    visible = yield from visible_job(index, spec.matches, spec.predicate)
    visible_tensors = 0
    if visible is not None:
        for start in range(0, len(index.tensor_ids), CHUNK):
            visible_tensors += sum(
                map(visible.__contains__, index.tensor_ids[start : start + CHUNK])
            )
            yield
    new_orders: OrderCache = {}
    levels: dict[int, Level] = {}
    for parent in index.long_parents:
        if spec.column < 0:
            shown, rows, reverse = parent.children, None, False
        else:
            key = (id(parent), spec.column)
            cached = orders.get(key) or new_orders.get(key)
            if cached is None:
                ordered = yield from order_job(parent.children, spec.column)
                positions = yield from rows_job(ordered)
                cached = new_orders[key] = (ordered, positions)
            shown, rows, reverse = cached[0], cached[1], spec.descending
            if reverse:
                shown = shown[::-1]
        if visible is not None:
            kept: list[ModuleNode] = []
            for start in range(0, len(shown), CHUNK):
                chunk = shown[start : start + CHUNK]
                kept.extend(compress(chunk, map(visible.__contains__, map(id, chunk))))
                yield
            shown, reverse = kept, False
            rows = yield from rows_job(kept)
        levels[id(parent)] = Level(shown, rows, reverse)
    return Prepared(spec, root, index, visible, visible_tensors, levels, new_orders)
