"""Materialising a meta model one unit at a time, for random-init exports.

A unit is the largest subtree of modules that fits a byte budget (a decoder
layer, the embeddings ...). Each unit gets real storage, is initialised by the
model's own ``_initialize_weights`` (the ``_init_weights`` of the nearest
PreTrainedModel, children before parents, as ``initialize_weights`` does), is
written, and goes back to meta. Every module is seeded from (seed, module
name) before its init, so the bytes depend on the seed alone.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from ckpt_gui.core.export.convert_kernels import one_torch_thread
from ckpt_gui.core.export.split_normal import split_normal_on_this_thread


def seed_for(seed: int, name: str) -> int:
    digest = hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class UnitMaterializer:
    """Gives tensors by name, materialising the unit that holds them.

    While the engine writes one unit, a worker thread initialises the next
    (torch kernels and file writes both release the GIL): at most two units
    are in memory at once. Units that fit the budget live in two reused
    arenas instead of fresh allocations: fresh pages cost about 0.6 s of CPU
    per GB here (the kernel zeroes and maps each one), as much as half the
    random number generation itself.
    """

    def __init__(self, model: Any, seed: int, budget: int, needed: Iterable[str]) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self.model = model
        self.seed = seed
        self.units: list[tuple[str, Any, bool]] = list(_units(model, "", budget))
        self.owner = _init_owners(model)
        self.unit_of: dict[str, int] = {}
        for index, (prefix, module, recurse) in enumerate(self.units):
            for name in _unit_state(module, prefix, recurse):
                self.unit_of.setdefault(name, index)
        # Units holding nothing to write (e.g. a tied lm_head) are never materialised.
        self.needed = sorted({self.unit_of[name] for name in needed})
        self.current: int | None = None
        self.state: dict[str, Any] = {}
        self.pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="random-init", initializer=one_torch_thread
        )
        self.pending: dict[int, Future[dict[str, Any]]] = {}
        # One arena for the unit being written, one per unit initialised ahead.
        # Only the bytes a unit uses are ever touched, so an arena costs what its
        # largest unit needs (44 MB for a TinyLlama projection), not the budget.
        self.arenas = [_Arena(budget + ARENA_SLACK) for _ in range(PREFETCH + 1)]
        self.arena_of: dict[int, _Arena] = {}
        self.turn = 0
        self.helper = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="random-init-split", initializer=one_torch_thread
        )

    def tensor(self, name: str) -> Any:
        index = self.unit_of[name]
        if index != self.current:
            self.release()
            for other in [i for i in self.pending if i < index or index not in self.pending]:
                # Asked out of order: drop the skipped prefetched units, they hold arenas.
                self._drop(other, self.pending.pop(other))
            future = self.pending.pop(index, None)
            if future is None:
                self.arena_of[index] = arena = self._arena()
                future = self.pool.submit(self._materialise, index, arena)
            self.state = future.result()
            self.current = index
            for following in [i for i in self.needed if i > index][:PREFETCH]:
                if following not in self.pending:
                    self.arena_of[following] = arena = self._arena()
                    self.pending[following] = self.pool.submit(self._materialise, following, arena)
        return self.state[name]

    def _arena(self) -> _Arena:
        """The next arena in turn that no live unit (current or prefetched) holds."""
        held = [*self.pending] + ([self.current] if self.current is not None else [])
        live = {id(self.arena_of[i]) for i in held if i in self.arena_of}
        for _ in self.arenas:
            self.turn = (self.turn + 1) % len(self.arenas)
            if id(self.arenas[self.turn]) not in live:
                break
        return self.arenas[self.turn]

    def _materialise(self, index: int, arena: _Arena) -> dict[str, Any]:
        # Only this pool thread sees the two-thread normal_ (a per-thread torch mode).
        with split_normal_on_this_thread(self.helper):
            return self._initialise(index, arena)

    def _initialise(self, index: int, arena: _Arena) -> dict[str, Any]:
        import torch
        from transformers import initialization

        prefix, module, recurse = self.units[index]
        size = _padded_nbytes(module, recurse)
        base = arena.acquire(size) if size <= arena.size else None
        if base is None:
            for spare in self.arenas:
                spare.trim()  # keep peak memory at one large unit plus one arena
            module.to_empty(device="cpu", recurse=recurse)
        else:
            module._apply(_Carver(base), recurse=recurse)
        with torch.no_grad(), initialization.guard_torch_init_functions():
            for name, sub in _post_order(module, prefix.rstrip("."), recurse):
                owner = self.owner.get(id(sub), self.model)
                # The flag makes transformers skip a module; a plan run twice must init again.
                sub.__dict__.pop("_is_hf_initialized", None)
                torch.manual_seed(seed_for(self.seed, name))
                owner._initialize_weights(sub)
        return _unit_state(module, prefix, recurse)

    def _drop(self, index: int, future: Any) -> None:
        future.cancel()
        if not future.cancelled() and future.exception() is None:
            _, module, recurse = self.units[index]
            module.to_empty(device="meta", recurse=recurse)

    def release(self) -> None:
        if self.current is not None:
            _, module, recurse = self.units[self.current]
            self.state = {}
            module.to_empty(device="meta", recurse=recurse)
            self.current = None

    def close(self) -> None:
        """Stop the worker and give every unit's memory back."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.helper.shutdown(wait=True, cancel_futures=True)
        for index, future in self.pending.items():
            self._drop(index, future)
        self.pending.clear()
        self.release()
        self.arenas = []


# Units initialised ahead of the one being written (2 measured no faster here,
# and held one more unit in memory).
PREFETCH = 1


# Room for aligning each tensor of a unit in its arena.
ARENA_SLACK = 1024 * 1024
ALIGN = 64
# Longest wait for an arena's last queued writes before taking fresh memory instead.
ARENA_WAIT_SECONDS = 10.0


class _Arena:
    """Memory reused by one unit after another.

    A unit's tensors are views of one base tensor made from a fresh numpy view
    of the arena; the engine's queued writes keep those tensors alive, so the
    view dies only after the last write of the unit is done. Its finalizer
    then zeroes the bytes the unit used (on whichever thread let go last, not
    on the initialising one) and marks the arena idle: a unit's bytes never
    depend on what the previous one left behind.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.array: Any = None
        self.idle = threading.Event()
        self.idle.set()

    def acquire(self, nbytes: int) -> Any:
        import numpy as np
        import torch

        if not self.idle.wait(ARENA_WAIT_SECONDS):
            return None  # something still holds the last unit: fresh memory instead
        if self.array is None:
            self.array = np.zeros(self.size, dtype=np.uint8)  # fresh pages: zero already
        self.idle.clear()
        view = self.array[:nbytes]
        weakref.finalize(view, self._recycle, self.array, nbytes)
        return torch.from_numpy(view)

    def _recycle(self, array: Any, nbytes: int) -> None:
        ctypes.memset(array.ctypes.data, 0, nbytes)  # releases the GIL
        self.idle.set()

    def trim(self) -> None:
        if self.idle.is_set():
            self.array = None


class _Carver:
    """``Module._apply`` function: each tensor becomes the next aligned slice of ``base``."""

    def __init__(self, base: Any) -> None:
        self.base = base
        self.offset = 0

    def __call__(self, tensor: Any) -> Any:
        import torch

        nbytes = tensor.numel() * tensor.element_size()
        if nbytes == 0 or not tensor.is_contiguous() or self.offset + nbytes > self.base.numel():
            # (a tensor shared inside the unit is carved once per module that holds it)
            return torch.zeros_like(tensor, device="cpu")
        start = self.offset
        self.offset = start + (nbytes + ALIGN - 1) // ALIGN * ALIGN
        return self.base[start : start + nbytes].view(tensor.dtype).view(tensor.shape)


def _padded_nbytes(module: Any, recurse: bool) -> int:
    tensors = [*module.parameters(recurse=recurse), *module.buffers(recurse=recurse)]
    return sum((t.numel() * t.element_size() + ALIGN - 1) // ALIGN * ALIGN for t in tensors)


def _nbytes(module: Any, recurse: bool) -> int:
    tensors = [*module.parameters(recurse=recurse), *module.buffers(recurse=recurse)]
    return sum(t.numel() * t.element_size() for t in tensors)


def _units(module: Any, prefix: str, budget: int) -> Iterator[tuple[str, Any, bool]]:
    children = list(module.named_children())
    if not children or _nbytes(module, True) <= budget:
        yield prefix, module, True
        return
    if _nbytes(module, False) or any(True for _ in module.buffers(recurse=False)):
        yield prefix, module, False
    for name, child in children:
        yield from _units(child, f"{prefix}{name}.", budget)


def _unit_state(module: Any, prefix: str, recurse: bool) -> dict[str, Any]:
    if recurse:
        return dict(module.state_dict(prefix=prefix, keep_vars=True))
    state = {f"{prefix}{k}": v for k, v in module._parameters.items() if v is not None}
    state.update(
        {
            f"{prefix}{k}": v
            for k, v in module._buffers.items()
            if v is not None and k not in module._non_persistent_buffers_set
        }
    )
    return state


def _post_order(module: Any, name: str, recurse: bool) -> Iterator[tuple[str, Any]]:
    if recurse:
        for child_name, child in module.named_children():
            yield from _post_order(child, f"{name}.{child_name}" if name else child_name, True)
    yield name, module


def _init_owners(model: Any) -> dict[int, Any]:
    """The PreTrainedModel whose _initialize_weights applies to each module (smart_apply)."""
    from transformers import PreTrainedModel

    owners: dict[int, Any] = {}
    stack = [(model, model)]
    while stack:
        module, owner = stack.pop()
        if isinstance(module, PreTrainedModel):
            owner = module
        owners[id(module)] = owner
        stack.extend((child, owner) for child in module.children())
    return owners
