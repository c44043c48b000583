"""A histogram plot (pyqtgraph), created on first use so startup does not pay for it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from PySide6.QtWidgets import QVBoxLayout, QWidget


class HistogramPlot(QWidget):
    """Bars for ``counts`` between ``edges`` (len(edges) == len(counts) + 1)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._plot: Any = None
        self.setVisible(False)

    def show_histogram(self, counts: Sequence[int], edges: Sequence[float]) -> None:
        if not counts:
            self.clear_plot()
            return
        plot = self._ensure_plot()
        import pyqtgraph as pg

        plot.clear()
        width = edges[1] - edges[0]
        centers = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
        plot.addItem(
            pg.BarGraphItem(
                x=centers, height=list(counts), width=width, brush=(66, 133, 244), pen=None
            )
        )
        plot.setXRange(edges[0], edges[-1], padding=0.02)
        plot.setYRange(0, max(counts) * 1.05 or 1, padding=0)
        self.setVisible(True)

    def clear_plot(self) -> None:
        if self._plot is not None:
            self._plot.clear()
        self.setVisible(False)

    def _ensure_plot(self) -> Any:
        if self._plot is None:
            import pyqtgraph as pg

            plot = pg.PlotWidget(background=self.palette().base().color())
            plot.setFixedHeight(210)
            plot.setMouseEnabled(x=True, y=False)
            plot.hideButtons()
            plot.setMenuEnabled(False)
            text = self.palette().text().color()
            for side in ("left", "bottom"):
                axis = plot.getAxis(side)
                axis.setPen(text)
                axis.setTextPen(text)
            plot.getAxis("left").setWidth(48)
            self._layout.addWidget(plot)
            self._plot = plot
        return self._plot
