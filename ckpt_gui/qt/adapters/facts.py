"""The adapter lines of a checkpoint tab's summary (no widgets: HTML for its label)."""

from __future__ import annotations

import html

from ckpt_gui.core.adapters.summary import AdapterInfo
from ckpt_gui.core.formatting import human_count

ADAPTER_COLOR = "#00796b"  # adapter rows in the tree use the same colour


def adapter_html(info: AdapterInfo) -> str:
    """Two lines: what the adapter is and its base; rank, scale and what it adapts."""
    s = info.settings
    base = html.escape(s.base_model or "no base named")
    if s.revision:
        base += f" @ {html.escape(s.revision)}"
    where = (
        f" (found: {html.escape(info.base_found_by or '')})"
        if info.base_path
        else " (not on this machine)"
        if s.base_model
        else ""
    )
    first = (
        f"<span style='color:{ADAPTER_COLOR}'><b>{html.escape(s.peft_type)} adapter</b></span>"
        f" for <b>{base}</b>{where}"
    )
    if not s.supported:
        return first
    targets = (
        s.target_modules
        if isinstance(s.target_modules, str)
        else ", ".join(sorted(s.target_modules))
    )
    scale_rule = "alpha/√r, rsLoRA" if s.use_rslora else "alpha/r"
    parts = [
        f"r <b>{s.r}</b>",
        f"alpha {s.lora_alpha:g}",
        f"scale <b>{s.scale:g}</b> ({scale_rule})",
        f"{len(info.modules)} modules ({html.escape(targets)})",
        f"<b>{human_count(info.adapted_parameters)}</b> adapted parameters",
    ]
    if s.use_dora:
        parts.append(f"DoRA ({sum(m.dora for m in info.modules)} magnitudes)")
    if s.rank_pattern or s.alpha_pattern:
        parts.append(f"{len(s.rank_pattern)} rank / {len(s.alpha_pattern)} alpha patterns")
    if info.replaced:
        parts.append(f"modules_to_save: {html.escape(', '.join(info.replaced))}")
    return first + "<br>" + " · ".join(parts)
