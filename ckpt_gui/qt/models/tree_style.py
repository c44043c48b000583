"""What the tree's columns say and how its rows look: headers, roles, status colours, texts.

Split from ``tree_model`` so that the model keeps only the Qt plumbing (indexes, parents,
rows). ``tree_model`` re-exports every name here, the place other features import them
from (``tree_model.STATUS_COLORS``, ``tree_model.Column``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QFont, QIcon

from ckpt_gui.core.adapters.tree import is_adapter_tensor
from ckpt_gui.core.check.status import KeyStatus
from ckpt_gui.core.formatting import human_bytes, human_count
from ckpt_gui.core.tree.build import ModuleNode
from ckpt_gui.core.tree.ghosts import is_ghost
from ckpt_gui.core.tree.grouping import GroupNode
from ckpt_gui.qt.models.tree_rows import BUCKET_SIZE, RangeNode


class Column(IntEnum):
    NAME = 0
    SHAPE = 1
    DTYPE = 2
    PARAMETERS = 3
    SIZE = 4
    FILE = 5


HEADERS = ("Name", "Shape", "DType", "Parameters", "Size", "File")

NodeRole = Qt.ItemDataRole.UserRole + 1  # the ModuleNode
SortRole = Qt.ItemDataRole.UserRole + 2  # a value that sorts naturally
FractionRole = Qt.ItemDataRole.UserRole + 3  # node bytes / checkpoint bytes (size bar)
StatusRole = Qt.ItemDataRole.UserRole + 4  # status name or None

# Row colours by status name; any other name may be added here. The comparison's
# statuses are core's KeyStatus (strings, so they key this dict like any name).
STATUS_COLORS: dict[str, QColor] = {
    KeyStatus.OK: QColor(46, 125, 50),
    KeyStatus.MISSING: QColor(198, 40, 40),
    KeyStatus.UNEXPECTED: QColor(230, 120, 0),
    KeyStatus.MISMATCHED: QColor(142, 36, 170),
    KeyStatus.IGNORED: QColor(120, 120, 120),
    # Scan findings (qt/scan) and diff results (qt/diff).
    "nan": QColor(198, 40, 40),
    "inf": QColor(173, 20, 87),
    "extreme": QColor(230, 81, 0),
    "all_zero": QColor(0, 121, 107),
    "changed": QColor(216, 67, 21),
    "only_in_a": QColor(198, 40, 40),
}
# Worst first: a module row shows the first of these found below it.
STATUS_SEVERITY: tuple[str, ...] = (
    "nan",
    "inf",
    "extreme",
    "all_zero",
    "only_in_a",
    "changed",
    *KeyStatus.by_severity(),
)
# Optional icon per status, shown before the name (the comparison registers them).
STATUS_ICONS: dict[str, QIcon] = {}
# Tensors of a LoRA adapter in its base's tree (teal: purple already means mismatch).
ADAPTER_COLOR = QColor(0, 121, 107)
GHOST_COLOR = QColor(140, 140, 140)  # rows for tensors the checkpoint lacks (ghost rows)
RANGE_COLOR = QColor(92, 103, 125)  # the "a … b" rows that split a long level


def shape_text(shape: tuple[int, ...]) -> str:
    return " × ".join(str(d) for d in shape) if shape else "scalar"


def natural_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name.lower())


def sort_value(node: ModuleNode, column: int) -> Any:
    """A key that orders ``column`` naturally (numbers as numbers); ``SortRole``."""
    tensor = node.tensor
    if column == Column.NAME:
        return natural_key(node.name)
    if column == Column.SHAPE:
        return tensor.shape if tensor else ()
    if column == Column.DTYPE:
        return tensor.dtype if tensor else ""
    if column == Column.PARAMETERS:
        return node.parameters
    if column == Column.SIZE:
        return node.nbytes
    return tensor.file if tensor else ""


def display_text(node: ModuleNode, column: int, module_class: str | None, alias: str | None) -> str:
    """The DisplayRole text of ``column`` for ``node``."""
    tensor = node.tensor
    if column == Column.NAME:
        if isinstance(node, GroupNode):
            return f"{node.name}  ×{len(node.members)}"
        if module_class:
            return f"{node.name}  ({module_class.rsplit('.', 1)[-1]})"
        return node.name
    if column == Column.SHAPE:
        if isinstance(node, RangeNode):
            return f"{len(node.members):,} rows"
        return shape_text(tensor.shape) if tensor else ""
    if column == Column.DTYPE:
        if tensor is None:
            return node.quant.short() if node.quant is not None else ""
        return f"{tensor.dtype} · aux" if node.bookkeeping else tensor.dtype
    if is_ghost_row(node) and column in (Column.PARAMETERS, Column.SIZE):
        return "—"  # the model expects it; the checkpoint has no bytes for it
    if column == Column.PARAMETERS:
        return human_count(node.parameters)
    if column == Column.SIZE:
        return human_bytes(node.nbytes)
    if column == Column.FILE:
        if alias is not None:
            return f"{alias}  ({tensor.file})" if tensor else alias
        return tensor.file if tensor else ""
    return ""


def tooltip_text(
    node: ModuleNode,
    status: str | None,
    module_class: str | None,
    alias: str | None,
    alias_label: str,
) -> str:
    """The Name column's tooltip: the full path and what is special about the row."""
    if isinstance(node, RangeNode):
        parent = node.parent
        first = node.start + 1
        last = node.start + len(node.members)
        return (
            f"Rows {first:,}–{last:,} under {(parent.path if parent else '') or 'the checkpoint'}: "
            f"a level this long is shown in ranges of {BUCKET_SIZE:,} rows"
        )
    if isinstance(node, GroupNode):
        return (
            f"{len(node.members)} identical blocks; the rows below show block "
            f"{node.members[0].name} ({node.members[0].path})"
        )
    if alias is not None:
        return f"{node.path}\n{alias_label} name: {alias}"
    if node.quant is not None:
        quant = node.quant
        return (
            f"{node.path}  [{quant.describe()}: {len(quant.bookkeeping)} bookkeeping "
            f"tensors, {quant.bookkeeping_bytes:,} bytes, not counted as parameters]"
        )
    if node.bookkeeping:
        return f"{node.path}  [quantization bookkeeping: stored bytes, no parameters]"
    if is_ghost(node.tensor):
        return f"{node.path}  [missing: the model expects it, the checkpoint lacks it]"
    if is_adapter_tensor(node.tensor):
        return f"{node.path}  [from the adapter]" + (f"  [{status}]" if status else "")
    if module_class:
        return f"{node.path}  (pickled as {module_class})"
    return f"{node.path}  [{status}]" if status else node.path


def is_ghost_row(node: ModuleNode) -> bool:
    """A tensor the checkpoint lacks (comparison ghost), or a module made only of them."""
    if node.tensor is not None:
        return is_ghost(node.tensor)
    return bool(node.children) and node.tensor_count == 0 and node.parent is not None


def worst_status(statuses: list[str | None]) -> str | None:
    """The most severe of ``statuses`` (order in ``STATUS_SEVERITY``; unknown names last)."""
    rank = {name: i for i, name in enumerate(STATUS_SEVERITY)}
    found = [s for s in statuses if s is not None]
    return min(found, key=lambda s: rank.get(s, 99)) if found else None


def inherit_status(root: ModuleNode, status: Mapping[str, str]) -> dict[int, str]:
    """For module rows without their own status: the most severe status below them."""
    if not status:
        return {}
    rank = {name: i for i, name in enumerate(STATUS_SEVERITY)}
    inherited: dict[int, str] = {}
    for node in reversed(list(root.walk())):
        best = status.get(node.path)
        for child in node.children:
            candidate = status.get(child.path) or inherited.get(id(child))
            if candidate is not None and (
                best is None or rank.get(candidate, 99) < rank.get(best, 99)
            ):
                best = candidate
        if best is not None and not node.is_tensor:
            inherited[id(node)] = best
    return inherited


_BOLD = QFont()
_BOLD.setBold(True)
_ITALIC = QFont()
_ITALIC.setItalic(True)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def row_data(model: Any, node: ModuleNode, column: int, role: int) -> Any:
    """``CheckpointTreeModel.data`` for a valid index: every role the tree answers."""
    if role == Qt.ItemDataRole.DisplayRole:
        return display_text(node, column, model.module_class(node), model.alias_of(node))
    if role == SortRole:
        return sort_value(node, column)
    if role == NodeRole:
        return node
    if role == FractionRole:
        total = model.root.nbytes
        return node.nbytes / total if total else 0.0
    if role == StatusRole:
        return model.status_of(node)
    if role == Qt.ItemDataRole.DecorationRole and column == Column.NAME:
        return STATUS_ICONS.get(model.status_of(node) or "")
    if is_ghost_row(node):
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(GHOST_COLOR)
        if role == Qt.ItemDataRole.FontRole:
            return _ITALIC
    if role == Qt.ItemDataRole.ForegroundRole:
        status = model.status_of(node)
        if status in STATUS_COLORS and status != KeyStatus.OK:
            return QBrush(STATUS_COLORS[status])
        if type(node) is RangeNode:
            return QBrush(RANGE_COLOR)
        if is_adapter_tensor(node.tensor):
            return QBrush(ADAPTER_COLOR)  # a LoRA adapter's tensor shown in its base
        return None
    if role == Qt.ItemDataRole.TextAlignmentRole and column in (Column.PARAMETERS, Column.SIZE):
        return _RIGHT
    if role == Qt.ItemDataRole.FontRole and column == Column.NAME and not node.is_tensor:
        top = node.parent is model.root and type(node) is not RangeNode
        return _BOLD if top else None
    if role == Qt.ItemDataRole.ToolTipRole and column == Column.NAME:
        return tooltip_text(
            node,
            model.status_of(node),
            model.module_class(node),
            model.alias_of(node),
            model.alias_label,
        )
    return None
