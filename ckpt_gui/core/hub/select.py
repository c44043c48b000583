"""Which files of a Hub repo hold the weights: the remote twin of ``folder.pick_weights``.

Works on the repo's file listing alone (names and sizes from the API), in the
order transformers itself looks for weights.
"""

from __future__ import annotations

from dataclasses import dataclass

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.formats.folder import PREFERRED, WEIGHT_SUFFIXES
from ckpt_gui.core.hub.ref import HubRef

_UNSUPPORTED = {".onnx": "ONNX", ".h5": "TensorFlow", ".msgpack": "Flax"}
GGUF_SUFFIX = ".gguf"


@dataclass(frozen=True)
class WeightPlan:
    """``index`` (if any) and the weight files, as paths in the repo.

    For an index the shards are only known once it is read: ``with_shards`` adds them.
    """

    folder: str
    index: str | None
    shards: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    @property
    def files(self) -> tuple[str, ...]:
        return ((self.index,) if self.index else ()) + self.shards

    @property
    def open_path(self) -> str:
        """What to open in a local snapshot to get the same checkpoint."""
        if self.index:
            return self.index
        return self.shards[0] if len(self.shards) == 1 else self.folder

    @property
    def format(self) -> str:
        if len(self.shards) == 1 and self.shards[0].endswith(GGUF_SUFFIX):
            return "gguf"
        kinds = sorted(
            {"safetensors" if s.endswith(".safetensors") else "pytorch-zip" for s in self.shards}
        )
        name = "+".join(kinds) or "empty"
        if self.index:
            return f"{name}-sharded"
        return name if len(self.shards) == 1 else f"{name}-multi"

    def with_shards(self, weight_map_files: set[str], sizes: dict[str, int | None]) -> WeightPlan:
        assert self.index is not None
        base = self.index.rpartition("/")[0]
        shards = []
        for name in sorted(weight_map_files):
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise CheckpointError(self.index, f"shard path '{name}' leaves the repo folder")
            path = f"{base}/{name}" if base else name
            if path not in sizes:
                raise CheckpointError(self.index, f"index lists shard {name}, which the repo lacks")
            if not path.endswith((".safetensors", ".bin", ".pt", ".pth")):
                raise CheckpointError(self.index, f"shard {name} is not a weight file")
            shards.append(path)
        return WeightPlan(self.folder, self.index, tuple(shards), self.warnings)


def plan_weights(ref: HubRef, sizes: dict[str, int | None]) -> WeightPlan:
    """Pick the weight files for ``ref`` (a whole repo, a folder in it, or one file)."""
    wanted = (ref.path_in_repo or "").strip("/")
    if wanted and wanted in sizes:
        folder = wanted.rpartition("/")[0]
        if wanted.endswith(".index.json"):
            return WeightPlan(folder, wanted, ())
        if wanted.endswith((*WEIGHT_SUFFIXES, GGUF_SUFFIX)):
            return WeightPlan(folder, None, (wanted,))
        raise CheckpointError(str(ref), f"{wanted} is not a weight file or index")
    prefix = f"{wanted}/" if wanted else ""
    names = {
        n[len(prefix) :] for n in sizes if n.startswith(prefix) and "/" not in n[len(prefix) :]
    }
    if wanted and not any(n.startswith(prefix) for n in sizes):
        raise CheckpointError(str(ref), f"no file or folder '{wanted}' in the repo")

    def full(name: str) -> str:
        return prefix + name

    for preferred in PREFERRED:
        if preferred in names:
            others = [
                n for n in PREFERRED if n in names and n.split(".")[0] != preferred.split(".")[0]
            ]
            warnings = (
                (f"repo also has {', '.join(others)}; showing {preferred}",) if others else ()
            )
            if preferred.endswith(".index.json"):
                return WeightPlan(wanted, full(preferred), (), warnings)
            return WeightPlan(wanted, None, (full(preferred),), warnings)
    indexes = sorted(n for n in names if n.endswith(".index.json"))
    if indexes:
        warnings = (f"repo has several indexes; showing {indexes[0]}",) if len(indexes) > 1 else ()
        return WeightPlan(wanted, full(indexes[0]), (), warnings)
    for suffix in WEIGHT_SUFFIXES:
        found = sorted(full(n) for n in names if n.endswith(suffix))
        if found:
            return WeightPlan(wanted, None, tuple(found))
    ggufs = sorted(full(n) for n in names if n.endswith(GGUF_SUFFIX))
    if ggufs:
        # GGUF repos hold one file per quantization: each is a whole model on its own.
        warnings = ()
        if len(ggufs) > 1:
            shown = ", ".join(g.rpartition("/")[2] for g in ggufs[:8])
            more = f" and {len(ggufs) - 8} more" if len(ggufs) > 8 else ""
            warnings = (
                f"repo has {len(ggufs)} GGUF files ({shown}{more}); showing {ggufs[0]}; for "
                f"another open https://huggingface.co/{ref.repo_id}/blob/{ref.revision_or_main}/FILE",
            )
        return WeightPlan(wanted, None, (ggufs[0],), warnings)
    where = f"folder '{wanted}' of the repo" if wanted else "the repo"
    others = sorted({s for n in names for s in _UNSUPPORTED if n.endswith(s)})
    if others:
        kinds = ", ".join(_UNSUPPORTED[s] for s in others)
        raise CheckpointError(
            str(ref), f"{where} has only {kinds} weights, which ckpt-gui does not read"
        )
    subfolders = sorted(
        {
            rest.split("/")[0]
            for n in sizes
            if n.startswith(prefix)
            and n.endswith(WEIGHT_SUFFIXES)
            and "/" in (rest := n[len(prefix) :])
        }
    )
    hint = ""
    if subfolders:
        example = f"{ref.repo_id}/tree/{ref.revision_or_main}/{prefix}{subfolders[0]}"
        hint = f" here; weights are in {', '.join(subfolders[:5])} (open https://huggingface.co/{example})"
    raise CheckpointError(str(ref), f"{where} has no .safetensors or PyTorch weights{hint}")
