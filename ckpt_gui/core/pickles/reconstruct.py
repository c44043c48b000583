"""The reconstructions torch and numpy pickles use, understood as data, never called.

``load_pickle`` hands every fresh ``PickledObject`` to ``reconstruct``; the few
callables listed here turn into plain values:

- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` /
  ``_rebuild_parameter`` / ``_rebuild_parameter_with_state`` /
  ``torch._tensor._rebuild_from_type_v2``: a ``TensorRef`` (storage, offset,
  shape, stride), the storage being whatever ``persistent_load`` gave
  (``StorageRef`` for torch files);
- ``torch.Size``: a tuple; ``collections.OrderedDict``/``defaultdict``: a dict;
  ``builtins.set``/``frozenset``/``slice``/``complex``, ``_codecs.encode`` of
  text (how protocol 2 spells ``bytes``), ``bytearray`` of bytes (never of a
  declared length: ``bytearray(8 << 30)`` stays a placeholder);
- numpy (under ``numpy.core`` and ``numpy._core``): dtypes, scalars and arrays,
  built from the bytes in the pickle with ``np.frombuffer`` (numeric dtypes
  only; object arrays stay placeholders).

Everything else stays a ``PickledObject``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ckpt_gui.core.pickles.unpickler import Global, PickledObject

# torch storage class name -> safetensors dtype name (what TensorInfo speaks).
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "F32",
    "DoubleStorage": "F64",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64",
    "Float8_e4m3fnStorage": "F8_E4M3",
    "Float8_e5m2Storage": "F8_E5M2",
    "Float8_e8m0fnuStorage": "F8_E8M0",
    "Float8_e4m3fnuzStorage": "F8_E4M3FNUZ",
    "Float8_e5m2fnuzStorage": "F8_E5M2FNUZ",
    "UInt16Storage": "U16",
    "UInt32Storage": "U32",
    "UInt64Storage": "U64",
}
# torch dtype attribute names as globals (``torch.float16``), for UntypedStorage pids.
TORCH_DTYPE_GLOBALS: dict[str, str] = {
    "float32": "F32",
    "float": "F32",
    "float64": "F64",
    "double": "F64",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "int64": "I64",
    "long": "I64",
    "int32": "I32",
    "int": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "uint16": "U16",
    "uint32": "U32",
    "uint64": "U64",
}

_REBUILD_TENSOR = {"torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor"}
_REBUILD_PARAMETER = {
    "torch._utils._rebuild_parameter",
    "torch._utils._rebuild_parameter_with_state",
}
_REBUILD_FROM_TYPE = "torch._tensor._rebuild_from_type_v2"
_NUMPY_CORES = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMERIC_KINDS = frozenset("biufc")


@dataclass(frozen=True, eq=False)
class StorageRef:
    """A torch storage: ``key`` names its bytes in the archive (``data/<key>``) or legacy stream."""

    key: str
    dtype: str
    numel: int
    location: str = "cpu"


@dataclass(frozen=True, eq=False)
class TensorRef:
    """A tensor as metadata: a window of ``storage`` (element offset, shape, stride)."""

    storage: Any  # StorageRef for torch files; whatever persistent_load gave otherwise
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    requires_grad: bool = False
    parameter: bool = False
    subclass: str | None = None

    @property
    def dtype(self) -> str:
        return str(self.storage.dtype) if isinstance(self.storage, StorageRef) else "?"

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def contiguous(self) -> bool:
        expected = 1
        for size, step in zip(reversed(self.shape), reversed(self.stride), strict=True):
            if size != 1 and step != expected:
                return False
            expected *= size
        return True

    def extent(self) -> int:
        """Elements of the storage the view reaches (0 for an empty tensor)."""
        if any(size == 0 for size in self.shape):
            return 0
        return (
            self.offset
            + 1
            + sum((size - 1) * step for size, step in zip(self.shape, self.stride, strict=True))
        )


@dataclass(eq=False)
class NumpyDtype:
    """A numpy dtype being built (BUILD sets its byte order after REDUCE made it)."""

    value: Any

    def __repr__(self) -> str:
        return f"dtype({self.value})"


@dataclass(eq=False)
class NumpyArray:
    """A numpy array being built: ``_reconstruct`` makes it empty, BUILD fills ``value``."""

    value: Any = None
    placeholder: PickledObject | None = None

    def __repr__(self) -> str:
        if self.value is None:
            return "ndarray(?)"
        return f"ndarray(shape={list(self.value.shape)}, dtype={self.value.dtype})"


def reconstruct(obj: PickledObject) -> Any:
    """A plain value for the callables this module knows; ``obj`` itself otherwise."""
    name = obj.name
    args = obj.args
    if name in _REBUILD_TENSOR:
        return _tensor(obj) or obj
    if name in _REBUILD_PARAMETER:
        if args and isinstance(args[0], TensorRef):
            inner = args[0]
            grad = bool(args[1]) if len(args) > 1 else True
            return TensorRef(
                inner.storage, inner.offset, inner.shape, inner.stride, grad, True, inner.subclass
            )
        return obj
    if name == _REBUILD_FROM_TYPE:
        return _from_type(obj)
    if name == "torch.Size":
        return tuple(args[0]) if args and isinstance(args[0], tuple | list) else obj
    if name in ("collections.OrderedDict", "collections.defaultdict"):
        return _dict(obj)
    if name.startswith("builtins."):
        return _builtin(obj)
    if name == "_codecs.encode":
        if len(args) == 2 and isinstance(args[0], str) and args[1] in ("latin1", "latin-1"):
            return args[0].encode("latin-1")
        return obj
    return _numpy(obj)


def _tensor(obj: PickledObject) -> TensorRef | None:
    args = obj.args
    if len(args) < 4:
        return None
    storage, offset, shape, stride = args[:4]
    if not (isinstance(offset, int) and _int_tuple(shape) and _int_tuple(stride)):
        return None
    if len(shape) != len(stride) or offset < 0 or any(v < 0 for v in (*shape, *stride)):
        return None
    grad = bool(args[4]) if len(args) > 4 and isinstance(args[4], bool) else False
    return TensorRef(storage, offset, tuple(shape), tuple(stride), grad)


def _from_type(obj: PickledObject) -> Any:
    # _rebuild_from_type_v2(func, new_type, args, state): a tensor subclass (Parameter
    # subclasses, quantizer wrappers) whose data is func(*args).
    args = obj.args
    if len(args) < 3 or not isinstance(args[0], Global) or not isinstance(args[2], tuple):
        return obj
    inner = reconstruct(PickledObject(args[0].dotted, args[0], args[2]))
    if not isinstance(inner, TensorRef):
        return obj
    subclass = args[1].dotted if isinstance(args[1], Global) else None
    if subclass == "torch.Tensor":
        subclass = None
    return TensorRef(
        inner.storage,
        inner.offset,
        inner.shape,
        inner.stride,
        inner.requires_grad,
        inner.parameter or subclass == "torch.nn.parameter.Parameter",
        subclass,
    )


def _int_tuple(value: Any) -> bool:
    return isinstance(value, tuple | list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def _dict(obj: PickledObject) -> Any:
    args = obj.args
    result: dict[Any, Any] = {}
    source = args[-1] if args and obj.name == "collections.OrderedDict" else None
    if isinstance(source, list):
        for pair in source:
            if isinstance(pair, tuple | list) and len(pair) == 2:
                try:
                    result[pair[0]] = pair[1]
                except TypeError:
                    return obj
    return result


def _builtin(obj: PickledObject) -> Any:
    name, args = obj.name, obj.args
    try:
        if name in ("builtins.set", "builtins.frozenset"):
            items = args[0] if args else []
            if isinstance(items, list | tuple | set | frozenset):
                return set(items) if name == "builtins.set" else frozenset(items)
        elif name == "builtins.slice" and all(isinstance(a, int | None) for a in args):
            return slice(*args)
        elif name == "builtins.complex" and all(isinstance(a, int | float) for a in args):
            return complex(*args)
        elif name == "builtins.bytearray" and args and isinstance(args[0], bytes):
            return bytearray(args[0])
        elif name == "builtins.bytes" and args and isinstance(args[0], bytes):
            return args[0]
    except (TypeError, ValueError):
        pass
    return obj


def _numpy(obj: PickledObject) -> Any:
    name, args = obj.name, obj.args
    module, _, attr = name.rpartition(".")
    if name == "numpy.dtype":
        if args and isinstance(args[0], str) and len(args[0]) <= 16:
            try:
                dtype = np.dtype(args[0])
            except TypeError:
                return obj
            if dtype.kind in _NUMERIC_KINDS:
                return NumpyDtype(dtype)
        return obj
    if module in _NUMPY_CORES and attr == "scalar":
        if len(args) == 2 and isinstance(args[0], NumpyDtype) and isinstance(args[1], bytes):
            dtype = args[0].value
            if len(args[1]) == dtype.itemsize:
                return np.frombuffer(args[1], dtype=dtype)[0]
        return obj
    if module in _NUMPY_CORES and attr == "_reconstruct":
        return NumpyArray(None, obj)
    return obj


def build(target: Any, state: Any) -> bool:
    """Apply BUILD to the numpy values being built; False leaves it to the interpreter."""
    if isinstance(target, NumpyDtype):
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            target.value = target.value.newbyteorder(state[1])
        return True
    if isinstance(target, NumpyArray):
        target.value = _array_from_state(state)
        if target.value is None and target.placeholder is not None:
            target.placeholder.state = state
        return True
    return False


def _array_from_state(state: Any) -> Any:
    # ndarray.__setstate__((version, shape, dtype, is_fortran, rawdata))
    if not (isinstance(state, tuple) and len(state) == 5):
        return None
    _, shape, dtype, fortran, raw = state
    if not (_int_tuple(shape) and isinstance(dtype, NumpyDtype) and isinstance(raw, bytes)):
        return None
    if any(v < 0 for v in shape) or math.prod(shape) * dtype.value.itemsize != len(raw):
        return None
    flat = np.frombuffer(raw, dtype=dtype.value)
    return flat.reshape(shape, order="F" if fortran else "C")


def unwrap(value: Any) -> Any:
    """The plain value behind a numpy holder (anything else unchanged)."""
    if isinstance(value, NumpyArray):
        return value.value if value.value is not None else value.placeholder
    if isinstance(value, NumpyDtype):
        return value.value
    return value
