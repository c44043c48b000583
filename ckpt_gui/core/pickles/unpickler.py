"""A pickle interpreter that never imports or calls anything the pickle names.

Why our own: ``pickle.Unpickler`` with a ``find_class`` override still calls
whatever ``find_class`` returns (REDUCE, NEWOBJ, BUILD run ``__setstate__``),
and torch's weights-only unpickler refuses whole-model saves outright. This
module walks the opcodes itself and builds inert values:

- a global (``GLOBAL``/``STACK_GLOBAL``/``INST``) becomes a ``Global`` that
  only records its dotted name;
- calling one (``REDUCE``, ``NEWOBJ``, ``NEWOBJ_EX``, ``OBJ``, ``INST``) becomes
  a ``PickledObject`` recording the name, the arguments, and later its
  ``BUILD`` state, ``APPENDS`` items and ``SETITEMS`` entries;
- a persistent id (``BINPERSID``) is handed to ``persistent_load`` (default:
  ``PersistentRef``), which is how torch refers to tensor storages.

A few well-known reconstructions are understood as *data* (see
``reconstruct.py``): torch tensors and parameters become ``TensorRef``
(storage key, dtype, offset, shape, stride; never the bytes), ``torch.Size`` a
tuple, ``OrderedDict``/``defaultdict`` a dict, numpy arrays, scalars and dtypes
real numpy values built from the bytes in the pickle.

Everything a pickle declares is bounded by ``PickleLimits`` and the bytes
actually present: a declared length past the end of the data, too many
objects, too deep a nesting or too large a memo stop the walk with one
``CheckpointError`` naming the file and the problem.

API (used by ``archive.py`` for torch files, and by DCP/DeepSpeed readers for
their plain pickles)::

    result = load_pickle(data, name="model.bin")          # bytes, memoryview or mmap
    result.value       # the unpickled object graph (inert)
    result.end         # offset just past STOP (legacy torch files hold several pickles)
    result.globals     # every global the pickle names, in order of appearance
"""

from __future__ import annotations

from typing import Any

# Importing the opcode modules registers their handlers.
from ckpt_gui.core.pickles import ops_literals, ops_structure  # noqa: F401
from ckpt_gui.core.pickles.machine import Machine
from ckpt_gui.core.pickles.objects import (
    UNRESOLVED,
    Builder,
    Global,
    PersistentLoad,
    PersistentRef,
    PickledObject,
    PickleLimits,
    PickleResult,
    Reconstruct,
)

DEFAULT_LIMITS = PickleLimits()

__all__ = [
    "DEFAULT_LIMITS",
    "UNRESOLVED",
    "Global",
    "PersistentRef",
    "PickleLimits",
    "PickleResult",
    "PickledObject",
    "load_pickle",
]


def load_pickle(
    data: bytes | bytearray | memoryview | Any,
    *,
    name: str = "pickle",
    start: int = 0,
    persistent_load: PersistentLoad | None = None,
    reconstruct: Reconstruct | None = None,
    build: Builder | None = None,
    limits: PickleLimits = DEFAULT_LIMITS,
) -> PickleResult:
    """Interpret one pickle in ``data`` from ``start`` to its STOP, running nothing.

    ``reconstruct(obj)`` may turn a fresh ``PickledObject`` into a plain value
    (return the object unchanged otherwise); ``build(target, state)`` may
    apply a BUILD to a known value and return True. ``reconstruct.py`` provides
    the torch/numpy ones; ``archive.load_torch_pickle`` wires them up.
    """
    machine = Machine(data, name, start, persistent_load, reconstruct, build, limits)
    try:
        value = machine.run()
    finally:
        machine.close()
    return PickleResult(value, machine.pos, machine.globals)
