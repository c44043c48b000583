"""The fit check of an adapter tab, computed off the GUI thread (no Qt here).

The same ``ComparisonResult`` as a checkpoint comparison, so the compare bar, the
tree colours and the mismatch panel show it unchanged; keys are in the base's
naming because the tab's tree is the base's, with the adapter inside it.
"""

from __future__ import annotations

import dataclasses

from ckpt_gui.core.adapters.fit import expected_adapter_shapes, fit_adapter, in_base_naming
from ckpt_gui.core.adapters.keys import base_name
from ckpt_gui.core.adapters.tree import adapted_tensors, base_of
from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.model import Checkpoint
from ckpt_gui.core.tree.ghosts import tree_with_ghosts
from ckpt_gui.qt.check.view_model import ComparisonResult, ConfigChoice, Shape, problem_rows


def run_adapter_fit(checkpoint: Checkpoint, choice: ConfigChoice) -> ComparisonResult:
    assert checkpoint.adapter is not None
    config = choice.resolve(checkpoint)
    expected = load_expected(config)
    raw = fit_adapter(checkpoint, config, expected)
    vocab = config.values.get("vocab_size")
    wanted = expected_adapter_shapes(
        checkpoint.adapter.settings,
        {name: t.shape for name, t in expected.tensors.items()},
        vocab if isinstance(vocab, int) else None,
    )
    dtype = checkpoint.tensors[0].dtype if checkpoint.tensors else "F32"
    shapes: dict[str, tuple[Shape, str]] = {
        base_name(key): (wanted[key], dtype) for key in raw.missing if key in wanted
    }
    report = in_base_naming(raw)
    tensors = adapted_tensors(checkpoint, base_of(checkpoint))
    view = dataclasses.replace(checkpoint, tensors=tuple(tensors))
    root = tree_with_ghosts(tensors, {report.ghost_keys[k]: shapes[k] for k in shapes})
    return ComparisonResult(choice, report, root, tuple(problem_rows(report, view, shapes)), shapes)
