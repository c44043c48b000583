"""Background export jobs (no Qt): each a generator yielding Progress, returning ExportResult.

Call a ``plan_*`` function first (estimated size and shard plan, for the dialog),
then ``run_plan(plan, options)`` for checkpoint sources or
``run_random_init(plan, options)`` for random init. Cancel by ``close()`` on the job.
"""

from __future__ import annotations

from ckpt_gui.core.export.convert import (
    convert,
    plan_convert,
    plan_reshard,
    plan_safetensors,
    reshard,
    run_plan,
    to_safetensors,
)
from ckpt_gui.core.export.engine import ExportOptions, ExportResult
from ckpt_gui.core.export.plan import ExportPlan, PlannedTensor, ShardPlan
from ckpt_gui.core.export.renames import Rename

__all__ = [
    "ExportOptions",
    "ExportPlan",
    "ExportResult",
    "PlannedTensor",
    "Rename",
    "ShardPlan",
    "convert",
    "plan_convert",
    "plan_reshard",
    "plan_safetensors",
    "reshard",
    "run_plan",
    "to_safetensors",
]
