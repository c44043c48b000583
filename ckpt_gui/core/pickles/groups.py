"""What a global in a pickle means to a user, without importing torch.

Every global falls in one of three groups a user can act on:

- ``code``: code that runs when ``torch.load(weights_only=False)`` unpickles the
  file (``os.system``, ``subprocess``, ``eval``, ``getattr`` gadgets, names that
  cannot be checked). The only danger: never load such a file with torch.
- ``class``: classes (or functions) whose package code would be imported and
  run by torch's full loader: a custom model class, ``torch.nn`` modules,
  ``TrainingArguments``. Not harmful by itself if you trust where the file
  came from; ckpt-gui reads the file without them.
- ``data``: plain data containers and torch's own tensor reconstruction
  (``OrderedDict``, ``argparse.Namespace``, numpy arrays and scalars).

``allowed`` keeps its old meaning: torch's weights-only loader accepts the name.
torch's list is copied here (``WEIGHTS_ONLY_ALLOWED``) so that listing a
checkpoint needs no torch import; a test checks it against torch's own list.
"""

from __future__ import annotations

from ckpt_gui.core.model import PickleGlobal

CODE, CLASS, DATA = "code", "class", "data"
GROUP_TITLES = {
    CODE: "code that runs",
    CLASS: "classes whose code would be imported",
    DATA: "plain data",
}

_TORCH_TYPES = [
    "BFloat16",
    "Bool",
    "Byte",
    "Char",
    "Double",
    "Float",
    "Half",
    "Int",
    "Long",
    "Short",
    "ComplexDouble",
    "ComplexFloat",
]
_TORCH_DTYPES = [
    "bfloat16",
    "bits16",
    "bits1x8",
    "bits2x4",
    "bits4x2",
    "bits8",
    "bool",
    "complex128",
    "complex32",
    "complex64",
    "float16",
    "float32",
    "float4_e2m1fn_x2",
    "float64",
    "float8_e4m3fn",
    "float8_e4m3fnuz",
    "float8_e5m2",
    "float8_e5m2fnuz",
    "float8_e8m0fnu",
    "int1",
    "int16",
    "int2",
    "int3",
    "int32",
    "int4",
    "int5",
    "int6",
    "int64",
    "int7",
    "int8",
    "qint32",
    "qint8",
    "quint2x4",
    "quint4x2",
    "quint8",
    "uint1",
    "uint16",
    "uint2",
    "uint3",
    "uint32",
    "uint4",
    "uint5",
    "uint6",
    "uint64",
    "uint7",
    "uint8",
    "per_channel_affine",
    "per_channel_affine_float_qparams",
    "per_channel_symmetric",
    "per_tensor_affine",
    "per_tensor_symmetric",
]
_TORCH_REBUILDS = [
    "_rebuild_device_tensor_from_cpu_tensor",
    "_rebuild_device_tensor_from_numpy",
    "_rebuild_meta_tensor_no_storage",
    "_rebuild_nested_tensor",
    "_rebuild_parameter",
    "_rebuild_parameter_with_state",
    "_rebuild_qtensor",
    "_rebuild_sparse_tensor",
    "_rebuild_tensor",
    "_rebuild_tensor_v2",
    "_rebuild_tensor_v3",
    "_rebuild_wrapper_subclass",
]
WEIGHTS_ONLY_ALLOWED: frozenset[str] = frozenset(
    {
        "_codecs.encode",
        "builtins.bytearray",
        "builtins.complex",
        "builtins.set",
        "collections.Counter",
        "collections.OrderedDict",
        "torch.Size",
        "torch.Tensor",
        "torch.device",
        "torch.nn.parameter.Parameter",
        "torch._tensor._rebuild_from_type_v2",
        "torch.serialization._get_layout",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        *(f"torch._utils.{name}" for name in _TORCH_REBUILDS),
        *(f"torch.{name}" for name in _TORCH_DTYPES),
        *(
            f"torch.{t}Storage"
            for t in [*_TORCH_TYPES, "QInt32", "QInt8", "QUInt2x4", "QUInt4x2", "QUInt8"]
        ),
        *(f"torch.cuda.{t}Storage" for t in _TORCH_TYPES),
        *(f"{ns}{t}Tensor" for ns in ("torch.", "torch.cuda.") for t in _TORCH_TYPES[:10]),
        *(
            f"{ns}{t}Tensor"
            for ns in ("torch.sparse.", "torch.cuda.sparse.")
            for t in _TORCH_TYPES[:10]
            if t != "Bool"
        ),
    }
)

# Globals that run code by themselves, with the reason shown to users.
KNOWN_DANGERS: dict[str, str] = {
    "os.system": "runs a shell command",
    "posix.system": "runs a shell command (os.system)",
    "nt.system": "runs a shell command (os.system)",
    "os.popen": "runs a shell command",
    "os.execv": "replaces the process with another program",
    "os.execve": "replaces the process with another program",
    "os.remove": "deletes files",
    "os.unlink": "deletes files",
    "posix.remove": "deletes files",
    "posix.unlink": "deletes files",
    "subprocess.Popen": "starts a process",
    "subprocess.run": "starts a process",
    "subprocess.call": "starts a process",
    "subprocess.check_call": "starts a process",
    "subprocess.check_output": "starts a process",
    "subprocess.getoutput": "runs a shell command",
    "builtins.eval": "evaluates Python code",
    "builtins.exec": "executes Python code",
    "builtins.compile": "compiles Python code",
    "builtins.__import__": "imports arbitrary modules",
    "builtins.getattr": "reaches arbitrary attributes",
    "builtins.setattr": "changes arbitrary attributes",
    "builtins.delattr": "changes arbitrary attributes",
    "builtins.open": "opens files",
    "builtins.breakpoint": "starts a debugger",
    "builtins.input": "waits for input",
    "builtins.globals": "reaches interpreter internals",
    "builtins.vars": "reaches interpreter internals",
    "importlib.import_module": "imports arbitrary modules",
    "runpy._run_code": "executes Python code",
    "runpy.run_path": "executes a Python file",
    "runpy.run_module": "executes a Python module",
    "code.InteractiveInterpreter.runsource": "executes Python code",
    "pickle.loads": "unpickles nested data (hides further globals)",
    "_pickle.loads": "unpickles nested data (hides further globals)",
    "pickle.load": "unpickles nested data (hides further globals)",
    "marshal.loads": "loads Python bytecode",
    "types.FunctionType": "builds a function from bytecode",
    "types.CodeType": "builds Python bytecode",
    "ctypes.CDLL": "loads a native library",
    "webbrowser.open": "opens a browser",
    "shutil.rmtree": "deletes files",
    "socket.socket": "opens a network connection",
    "torch.load": "loads another pickle (hides further globals)",
    "torch.hub.load": "downloads and runs code",
    "numpy.load": "loads another pickle (hides further globals)",
    "operator.attrgetter": "reaches arbitrary attributes",
    "operator.methodcaller": "calls arbitrary methods",
    "functools.partial": "calls arbitrary functions",
}
# Whole modules whose every name is a code-running primitive.
DANGEROUS_MODULES: dict[str, str] = {
    "os": "operating-system access",
    "posix": "operating-system access",
    "nt": "operating-system access",
    "subprocess": "starts processes",
    "socket": "network access",
    "ctypes": "native code",
    "shutil": "file-system changes",
    "sys": "interpreter internals",
    "runpy": "runs Python code",
    "importlib": "imports modules",
    "code": "runs Python code",
    "codeop": "compiles Python code",
    "pty": "starts a terminal",
    "marshal": "loads bytecode",
    "pickle": "nested unpickling",
    "_pickle": "nested unpickling",
    "dill": "nested unpickling",
    "cloudpickle": "nested unpickling",
    "webbrowser": "opens a browser",
    "asyncio": "runs code",
    "multiprocessing": "starts processes",
    "threading": "starts threads",
    "urllib": "network access",
    "http": "network access",
    "requests": "network access",
    "operator": "calls arbitrary functions",
    "inspect": "interpreter internals",
    "gc": "interpreter internals",
}
# Builtins that only build plain values.
_DATA_BUILTINS = frozenset(
    [
        "set",
        "frozenset",
        "slice",
        "complex",
        "bytearray",
        "bytes",
        "dict",
        "list",
        "tuple",
        "int",
        "float",
        "str",
        "bool",
        "object",
        "range",
        "type",
    ]
)
# Plain data containers whose class torch's full loader imports but whose code only stores data.
_DATA_PREFIXES = (
    "torch._utils._rebuild_",
    "numpy.core.multiarray.",
    "numpy._core.multiarray.",
    "numpy.core.numeric._frombuffer",
    "numpy._core.numeric._frombuffer",
    "numpy.dtypes.",
    "omegaconf.",
    "datetime.",
    "pathlib.",
    "collections.",
)
_DATA_NAMES = frozenset(
    {
        "_codecs.encode",
        "argparse.Namespace",
        "copyreg._reconstructor",
        "numpy.dtype",
        "numpy.ndarray",
        "decimal.Decimal",
        "fractions.Fraction",
        "typing.Any",
        "uuid.UUID",
        "enum.Enum",
    }
)


def group_of(name: str) -> str:
    """``code``, ``class`` or ``data`` for a global's dotted name."""
    if name in WEIGHTS_ONLY_ALLOWED or name in _DATA_NAMES or name.startswith(_DATA_PREFIXES):
        return DATA
    if name in KNOWN_DANGERS or name.startswith(("<unresolved>", "<extension", "<call")):
        return CODE
    module, _, attribute = name.rpartition(".")
    top = module.split(".", 1)[0]
    if top in DANGEROUS_MODULES:
        return CODE
    if top in ("builtins", "__builtin__"):
        return DATA if attribute in _DATA_BUILTINS else CODE
    if module == "torch" and attribute[:1].islower() and not attribute.startswith("_"):
        return DATA if name in WEIGHTS_ONLY_ALLOWED else CLASS
    return CLASS


def reason_for(name: str, group: str) -> str:
    """Why the weights-only loader refuses ``name`` (empty when it accepts it)."""
    if name in WEIGHTS_ONLY_ALLOWED:
        return ""
    reason = KNOWN_DANGERS.get(name)
    if reason is not None:
        return reason
    if name.startswith("<unresolved>") or name.startswith("<extension"):
        return "global name is computed while loading: cannot be checked, never safe"
    module = name.rsplit(".", 1)[0]
    top = module.split(".", 1)[0]
    if group == CODE and top in DANGEROUS_MODULES:
        return f"{DANGEROUS_MODULES[top]} ({module} module)"
    if group == CODE:
        return "runs code while loading"
    if module.startswith(("torch.nn.modules", "torch.nn.parallel")):
        return "a pickled nn.Module (whole-model save): loading runs the class's code"
    if group == DATA:
        return "plain data, but not on the weights-only allow list"
    if name.startswith("__torch__."):
        return "a TorchScript class (torch.jit.load compiles its code)"
    return "custom class or function: loading imports and runs its code"


def classify(name: str, allowed_names: frozenset[str] | None = None) -> PickleGlobal:
    """A global with its group and, when the weights-only loader refuses it, why."""
    allowed = name in (allowed_names if allowed_names is not None else WEIGHTS_ONLY_ALLOWED)
    group = group_of(name)
    return PickleGlobal(name, allowed, "" if allowed else reason_for(name, group), group)
