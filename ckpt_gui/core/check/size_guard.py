"""Refuse configs that ask for an impossible model, and bound the meta build itself.

A config one typo away from a real one (``num_hidden_layers: 1000000``,
``hidden_size: 1000000000``) makes transformers build a million meta layers:
minutes and gigabytes before anything fails. Two guards keep ``check --config``,
``export random-init`` and the GUI's comparison worker answering:

* ``refuse_absurd``: the size the config asks for, estimated before anything is
  built. The shipped templates know the exact shapes of their architectures as
  formulas of the config (counted here without expanding a single key); for the
  rest a rough transformer formula of the usual fields serves. Beyond
  ``MAX_PARAMETERS`` or ``MAX_TENSORS`` no such model can exist (the largest
  published ones have about 2 * 10^12 parameters and 10^5 tensors); the tensor
  limit also keeps a template's expansion and the matching after it short.
* ``build_budget``: whatever slips past the estimate, the build is stopped once
  it takes longer than its time budget or registers more modules, parameters and
  buffers than its object budget (each costs about a kilobyte of Python objects
  on the meta device, so the count bounds the memory). torch's global
  registration hooks see every submodule as it is created, on the building
  thread only; the hook raises, which unwinds the build.

No torch or transformers at import: the estimate is pure arithmetic.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ckpt_gui.core.errors import CheckpointError

MAX_PARAMETERS = 10**14
MAX_TENSORS = 1_000_000
BUILD_SECONDS = 120.0
BUILD_OBJECTS = 2_000_000

_LAYERS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers", "num_decoder_layers")
_EXTRA_LAYERS = ("encoder_layers", "decoder_layers", "num_encoder_layers")
_HIDDEN = ("hidden_size", "n_embd", "d_model", "dim", "embed_dim", "model_dim")
_INTERMEDIATE = ("intermediate_size", "n_inner", "d_ff", "ffn_dim", "encoder_ffn_dim")
_EXPERTS = ("num_local_experts", "num_experts", "n_routed_experts", "moe_num_experts")
_EXPERT_INTERMEDIATE = ("moe_intermediate_size", "expert_intermediate_size")
_SHARED_INTERMEDIATE = ("shared_expert_intermediate_size",)
_POSITIONS = ("max_position_embeddings", "n_positions")


@dataclass(frozen=True)
class SizeEstimate:
    parameters: int
    tensors: int
    method: str  # "template" (exact) or "formula" (rough)


def estimate_size(values: Mapping[str, Any], exact: tuple[int, int] | None = None) -> SizeEstimate:
    """Parameters and tensors the config asks for, without building anything.

    ``exact``: (parameters, tensors) from a shipped template when one answers
    (``templates.template.template_size``; passed in, because the templates import
    ``expected``, which imports this module's build budget).
    """
    if exact is not None:
        return SizeEstimate(exact[0], exact[1], "template")
    parameters, tensors = _rough(values, depth=0)
    return SizeEstimate(parameters, tensors, "formula")


def refuse_absurd(
    values: Mapping[str, Any], source: str, exact: tuple[int, int] | None = None
) -> None:
    """A one-line error when the config asks for a model that cannot exist."""
    estimate = estimate_size(values, exact)
    if estimate.parameters > MAX_PARAMETERS:
        raise CheckpointError(
            source,
            f"config asks for over {_power_of_ten(estimate.parameters)} parameters "
            f"({estimate.parameters:.1e}); no model that large can exist "
            f"(limit {_power_of_ten(MAX_PARAMETERS)}): check its sizes for a typo",
        )
    if estimate.tensors > MAX_TENSORS:
        raise CheckpointError(
            source,
            f"config asks for {estimate.tensors:,} tensors; no model that large can exist "
            f"(limit {MAX_TENSORS:,}): check its layer and expert counts for a typo",
        )


@dataclass(frozen=True)
class BuildBudget:
    """How long a meta build may take and how many modules/parameters/buffers it may make."""

    seconds: float
    objects: int


def default_budget() -> BuildBudget:
    """The module's limits as they are now (read at call time, so tests can shrink them)."""
    return BuildBudget(BUILD_SECONDS, BUILD_OBJECTS)


@contextlib.contextmanager
def build_budget(budget: BuildBudget | None, source: str) -> Iterator[None]:
    """Stop a model build on this thread once it exceeds ``budget`` (CheckpointError)."""
    from torch.nn.modules import module as torch_module

    budget = budget or default_budget()
    owner = threading.get_ident()
    deadline = time.monotonic() + budget.seconds
    made = 0

    def check(*_args: Any) -> None:
        nonlocal made
        if threading.get_ident() != owner:
            return  # another thread's build has its own budget
        made += 1
        if made > budget.objects:
            raise CheckpointError(
                source,
                f"building the model made over {budget.objects:,} modules and tensors; "
                "stopped (the config is too large to inspect)",
            )
        if time.monotonic() > deadline:
            raise CheckpointError(
                source,
                f"building the model took over {budget.seconds:g} s; stopped "
                "(the config is too large to inspect)",
            )

    handles = [
        torch_module.register_module_module_registration_hook(check),
        torch_module.register_module_parameter_registration_hook(check),
        torch_module.register_module_buffer_registration_hook(check),
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _rough(values: Mapping[str, Any], depth: int) -> tuple[int, int]:
    """A decoder-style transformer of the config's sizes, plus its nested configs."""
    parameters = tensors = 0
    if depth < 3:
        for value in values.values():
            if isinstance(value, Mapping):
                nested = _rough(value, depth + 1)
                parameters += nested[0]
                tensors += nested[1]
    hidden = _first(values, _HIDDEN)
    layers = _first(values, _LAYERS) + sum(_number(values.get(k)) for k in _EXTRA_LAYERS)
    if not hidden and not layers:
        return parameters, tensors
    hidden = hidden or 1
    intermediate = _first(values, _INTERMEDIATE) or 4 * hidden
    experts = _first(values, _EXPERTS)
    expert_intermediate = _first(values, _EXPERT_INTERMEDIATE) or intermediate
    mlp = 3 * hidden * (expert_intermediate * experts if experts else intermediate)
    mlp += 3 * hidden * _first(values, _SHARED_INTERMEDIATE)
    per_layer = 4 * hidden * hidden + mlp
    embeddings = (_number(values.get("vocab_size")) + _first(values, _POSITIONS)) * hidden
    parameters += 2 * embeddings + layers * per_layer
    tensors += 3 + layers * (9 + 3 * experts)
    return parameters, tensors


def _first(values: Mapping[str, Any], names: tuple[str, ...]) -> int:
    for name in names:
        number = _number(values.get(name))
        if number:
            return number
    return 0


def _number(value: Any) -> int:
    """A positive whole size, else 0 (floats from JSON like 1e9 count; bools do not)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float) and math.isfinite(value) and value > 0:
        return int(value)
    return 0


def _power_of_ten(number: int) -> str:
    """The power of ten at or below ``number`` (exact: no float rounding up)."""
    return f"10^{len(str(number)) - 1}"
