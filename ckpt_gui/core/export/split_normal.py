"""Random init's ``normal_`` on two threads, seen only by the thread that asks for it.

torch's ``normal_`` is single threaded (255 M values/s here): it is the longest
part of a random init. :func:`split_normal_on_this_thread` fills the large
tensors of ``torch.nn.init.normal_`` (what transformers' ``init.normal_`` calls
through ``TORCH_INIT_FUNCTIONS``) half here, half on a helper thread.

It changes no global: it pushes a torch function mode, and torch keeps the mode
stack per thread, so other threads (the GUI, another export, the writer) call
the plain ``normal_``; ``TORCH_INIT_FUNCTIONS`` and ``torch.nn.init`` are never
touched. Leaving the ``with`` block pops the mode.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import Executor
from typing import Any

# Tensors of at least this many elements get their normal_ values from two threads.
SPLIT_MIN = 1 << 20
# transformers' guard_torch_init_functions puts its own normal_ in torch.nn.init while
# it initialises; torch's normal_ then hands that one to the mode. Both mean the same.
_NORMAL_MODULES = frozenset({"torch.nn.init", "transformers.initialization"})


@contextlib.contextmanager
def split_normal_on_this_thread(helper: Executor) -> Iterator[None]:
    """Inside the block, large ``nn.init.normal_`` fills on this thread use ``helper`` too."""
    with _mode_class()(helper):
        yield


def is_init_normal(func: Any) -> bool:
    return getattr(func, "__name__", None) == "normal_" and (
        getattr(func, "__module__", None) in _NORMAL_MODULES
    )


_MODE_CLASS: Any = None


def _mode_class() -> Any:
    """The mode class, defined on first use: importing this module imports no torch."""
    global _MODE_CLASS
    if _MODE_CLASS is None:
        from torch.overrides import TorchFunctionMode

        class SplitNormalMode(TorchFunctionMode):
            def __init__(self, helper: Executor) -> None:
                super().__init__()
                self.helper = helper

            def __torch_function__(
                self, func: Any, types: Any, args: Any = (), kwargs: Any = None
            ) -> Any:
                # torch pops this mode while it runs: the calls below are plain ones.
                kwargs = kwargs or {}
                if is_init_normal(func):
                    tensor, mean, std, generator = _normal_arguments(args, kwargs)
                    if (
                        generator is None
                        and tensor.device.type == "cpu"
                        and tensor.is_contiguous()
                        and tensor.numel() >= SPLIT_MIN
                    ):
                        return split_normal(self.helper, tensor, mean, std)
                return func(*args, **kwargs)

        _MODE_CLASS = SplitNormalMode
    return _MODE_CLASS


def _normal_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    names = ("tensor", "mean", "std", "generator")
    defaults: dict[str, Any] = {"mean": 0.0, "std": 1.0, "generator": None}
    values = {**defaults, **dict(zip(names, args, strict=False)), **kwargs}
    return values["tensor"], values["mean"], values["std"], values["generator"]


def split_normal(helper: Executor, tensor: Any, mean: float, std: float) -> Any:
    """Fill ``tensor`` with normal values, its second half on the helper thread.

    The first half continues the module's seeded generator; the second half
    uses a generator seeded by one draw from it. The split is fixed (half of
    the elements), so the bytes depend on the seed alone, never on threads.
    """
    import torch

    with torch.no_grad():
        flat = tensor.view(-1)
        half = flat.numel() // 2
        second_seed = int(torch.randint(0, 1 << 62, (1,)))
        generator = torch.Generator().manual_seed(second_seed)
        future = helper.submit(fill_normal, flat[half:], mean, std, generator)
        try:
            flat[:half].normal_(mean, std)
        finally:
            future.result()
    return tensor


def fill_normal(part: Any, mean: float, std: float, generator: Any) -> None:
    import torch

    with torch.no_grad():  # grad mode is per thread
        part.normal_(mean, std, generator=generator)
