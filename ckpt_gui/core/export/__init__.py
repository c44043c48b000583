"""Background export jobs (no Qt): each a generator yielding Progress, returning ExportResult.

Call a ``plan_*`` function first (estimated size and shard plan, for the dialog),
then ``run_plan(plan, options)`` for checkpoint sources or
``run_random_init(plan, options)`` for random init. Cancel with ``close()`` on
the job. One-call helpers live in the modules: ``convert.convert``,
``convert.reshard``, ``convert.to_safetensors``, ``random_init.random_init``.
"""

from __future__ import annotations

from ckpt_gui.core.export.convert import plan_convert, plan_reshard, plan_safetensors, run_plan
from ckpt_gui.core.export.engine import ExportOptions, ExportResult
from ckpt_gui.core.export.plan import ExportPlan, PlannedTensor, ShardPlan
from ckpt_gui.core.export.random_init import plan_random_init, run_random_init
from ckpt_gui.core.export.renames import RenameRule

__all__ = [
    "ExportOptions",
    "ExportPlan",
    "ExportResult",
    "PlannedTensor",
    "RenameRule",
    "ShardPlan",
    "plan_convert",
    "plan_random_init",
    "plan_reshard",
    "plan_safetensors",
    "run_plan",
    "run_random_init",
]
