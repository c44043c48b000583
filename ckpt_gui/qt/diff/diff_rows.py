"""Rows of the diff table: row kinds with their labels, colours and ranks, the columns,
``DiffRow`` built from a ``StructureDiff``, and the metric formatting.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor

from ckpt_gui.core.diff.values import StructureDiff, TensorDiff
from ckpt_gui.qt.models.tree_model import shape_text

SortRole = Qt.ItemDataRole.UserRole + 2
KindRole = Qt.ItemDataRole.UserRole + 5

# Row kinds: the core's pair statuses plus the structural ones and "pending".
ONLY_IN_A, ONLY_IN_B, SHAPE_CHANGED, PENDING = "only_in_a", "only_in_b", "shape_changed", "pending"
CHANGED, IDENTICAL, EQUAL_VALUES, NOT_COMPARED = (
    "changed",
    "identical",
    "equal_values",
    "not_compared",
)
KIND_LABELS = {
    ONLY_IN_A: "only in A",
    ONLY_IN_B: "only in B",
    SHAPE_CHANGED: "shape changed",
    PENDING: "comparing…",
    CHANGED: "changed",
    IDENTICAL: "identical",
    EQUAL_VALUES: "equal values",
    NOT_COMPARED: "not compared",
}
KIND_COLORS = {
    ONLY_IN_A: QColor(198, 40, 40),
    ONLY_IN_B: QColor(21, 101, 192),
    SHAPE_CHANGED: QColor(142, 36, 170),
    PENDING: QColor(140, 140, 140),
    CHANGED: QColor(216, 67, 21),
    IDENTICAL: QColor(46, 125, 50),
    EQUAL_VALUES: QColor(46, 125, 50),
    NOT_COMPARED: QColor(120, 120, 120),
}
# Severity for sorting the Status column (lower = more interesting).
KIND_RANK = {
    ONLY_IN_A: 0,
    ONLY_IN_B: 1,
    SHAPE_CHANGED: 2,
    CHANGED: 3,
    NOT_COMPARED: 4,
    PENDING: 5,
    EQUAL_VALUES: 6,
    IDENTICAL: 7,
}
STRUCTURAL = frozenset({ONLY_IN_A, ONLY_IN_B, SHAPE_CHANGED})
GREY = QBrush(QColor(138, 138, 138))


class DiffColumn(IntEnum):
    STATUS = 0
    NAME = 1
    NAME_B = 2
    SHAPE = 3
    DTYPE = 4
    PARAMETERS = 5
    MAX_ABS = 6
    REL_L2 = 7
    COSINE = 8


DIFF_HEADERS = (
    "Status",
    "Tensor",
    "In B as",
    "Shape",
    "DType",
    "Parameters",
    "max |a−b|",
    "rel L2",
    "cosine",
)


@dataclass
class DiffRow:
    key: str  # A's name (B's for only-in-B rows)
    key_b: str  # B's name; "" when only in A
    kind: str
    shape: str
    dtype: str
    parameters: int
    result: TensorDiff | None = None


def rows_from_structure(structure: StructureDiff) -> list[DiffRow]:
    """Every tensor of A and B once: pairs (pending values), then A-only, then B-only."""
    rows: list[DiffRow] = []
    for pair in structure.pairs:
        a, b = pair.a, pair.b
        shape = (
            shape_text(a.shape)
            if pair.same_shape
            else f"{shape_text(a.shape)} → {shape_text(b.shape)}"
        )
        dtype = a.dtype if pair.same_dtype else f"{a.dtype} → {b.dtype}"
        kind = PENDING if pair.same_shape else SHAPE_CHANGED
        rows.append(DiffRow(a.name, b.name, kind, shape, dtype, a.parameters))
    for t in structure.only_in_a:
        rows.append(DiffRow(t.name, "", ONLY_IN_A, shape_text(t.shape), t.dtype, t.parameters))
    for t in structure.only_in_b:
        rows.append(DiffRow(t.name, t.name, ONLY_IN_B, shape_text(t.shape), t.dtype, t.parameters))
    return rows


def format_metric(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "—"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def format_cosine(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 1.0:
        return "1"
    # 1 - cos is what tells nearly identical tensors apart: show enough digits for it.
    return f"{value:.10f}".rstrip("0")
