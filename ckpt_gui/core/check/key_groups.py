"""Group keys that differ only in layer numbers: ``model.layers.{0..31}.mlp.up_proj.weight``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KeyGroup:
    pattern: str
    keys: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {"pattern": self.pattern, "count": len(self.keys), "keys": list(self.keys)}


def group_keys(keys: list[str] | tuple[str, ...]) -> list[KeyGroup]:
    """Groups in first-seen order; a group of one keeps the key itself as pattern."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for key in keys:
        shape = tuple("#" if part.isdigit() else part for part in key.split("."))
        groups.setdefault(shape, []).append(key)
    result = []
    for shape, members in groups.items():
        if len(members) == 1:
            result.append(KeyGroup(members[0], (members[0],)))
            continue
        parts = []
        for position, part in enumerate(shape):
            if part != "#":
                parts.append(part)
                continue
            values = sorted({int(m.split(".")[position]) for m in members})
            parts.append(_span(values))
        result.append(KeyGroup(".".join(parts), tuple(members)))
    return result


def _span(values: list[int]) -> str:
    if len(values) == 1:
        return str(values[0])
    if values == list(range(values[0], values[-1] + 1)):
        return f"{{{values[0]}..{values[-1]}}}"
    return "{" + ",".join(str(v) for v in values) + "}"
