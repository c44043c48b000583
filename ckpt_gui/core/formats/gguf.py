"""GGUF files (llama.cpp, Ollama, LM Studio): the header through ``gguf.GGUFReader``.

Tensors are listed under their transformers names when the architecture's key list
is known without torch (a shipped template); the GGUF name of each stays in
``metadata["gguf.tensors"]``, with what it takes to read its values as transformers
would (the q/k head count for llama.cpp's row permutation). Otherwise the GGUF names
are shown and ``check``/``export``/``diff`` map them with the built model
(``core.gguf.naming.with_hf_names``). Shapes are PyTorch's (ggml's reversed),
parameters are logical values, ``nbytes`` the stored (quantized) bytes. A part of a
split set (``NAME-00001-of-00003.gguf``) opens the whole set (``core.gguf.splits``).
"""

from __future__ import annotations

from pathlib import Path

from ckpt_gui.core.gguf.header import GGUF_MAGIC
from ckpt_gui.core.gguf.naming import describe
from ckpt_gui.core.gguf.splits import read_gguf_set
from ckpt_gui.core.model import Checkpoint

NAME = "gguf"


def sniff(head: bytes) -> bool:
    return head[:4] == GGUF_MAGIC


def read(path: Path, root: Path | None = None) -> Checkpoint:
    base = root or path.parent
    header, files = read_gguf_set(path, base, str(path))
    return describe(header, source=str(path), relative=files[0][0], root=base, files=files)
