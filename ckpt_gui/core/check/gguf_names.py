"""GGUF checkpoints under transformers names when listing could not name them.

Listing names GGUF tensors from a shipped template (``core/gguf/naming.py``); without
one, the names come from the model built on the meta device, which is the check's
business (``expected_cache``), so this step lives here, above the readers.
"""

from __future__ import annotations

import dataclasses

from ckpt_gui.core.check.expected_cache import load_expected
from ckpt_gui.core.check.resolved import ResolvedConfig
from ckpt_gui.core.gguf.naming import NAMED_KEY, describe
from ckpt_gui.core.gguf.splits import read_gguf_set
from ckpt_gui.core.model import Checkpoint


def with_hf_names(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint under transformers names, building the model when listing could not."""
    if checkpoint.format != "gguf" or checkpoint.metadata.get(NAMED_KEY):
        return checkpoint
    if checkpoint.config is None or checkpoint.root is None:
        return checkpoint

    architectures = checkpoint.config.get("architectures") or [None]
    expected = load_expected(ResolvedConfig(checkpoint.source, checkpoint.config, architectures[0]))
    keys = list(expected.tensors) + [k for k in expected.tied if k not in expected.tensors]
    file = checkpoint.files[0].path
    header, files = read_gguf_set(checkpoint.root / file, checkpoint.root, checkpoint.source)
    named = describe(
        header,
        source=checkpoint.source,
        relative=file,
        root=checkpoint.root,
        hf_keys=keys,
        files=files,
    )
    return dataclasses.replace(named, source=checkpoint.source)
