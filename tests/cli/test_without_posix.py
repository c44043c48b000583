"""Every module imports and every verb works without ``fcntl`` and Linux's I/O calls.

One subprocess (tests/support/without_posix.py) blocks ``import fcntl`` with a
meta path hook and deletes ``os.preadv/pwritev/pread/pwrite/posix_fadvise/
copy_file_range``, imports every ckpt_gui module, then runs inspect, check,
diff, scan, export convert/reshard/safetensors and a tensor's statistics.
Each answer is checked against the libraries' own: safetensors' reader for
the listing and the written files, torch for dtype conversion and values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from tests.support.cli import REPO_ROOT


def _load_folder(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(folder.glob("*.safetensors")):
        tensors.update(load_file(shard))
    return tensors


def test_verbs_work_where_fcntl_and_positional_io_are_missing(
    tmp_path: Path, llama_dir: Path, llama_state_dict: dict[str, torch.Tensor]
) -> None:
    changed = tmp_path / "changed"
    changed.mkdir()
    tweaked = {k: v.clone() for k, v in load_file(llama_dir / "model.safetensors").items()}
    tweaked["lm_head.weight"][0, 0] += 1.0
    save_file(tweaked, changed / "model.safetensors", metadata={"format": "pt"})
    pickled = tmp_path / "model.bin"
    torch.save(llama_state_dict, pickled)

    out = {name: tmp_path / name for name in ("converted", "resharded", "from_pickle")}
    verbs = [
        ["inspect", str(llama_dir), "--json"],
        ["check", str(llama_dir), "--json"],
        ["diff", str(llama_dir), str(changed), "--json"],
        ["scan", str(llama_dir), "--json"],
        ["export", "convert", str(llama_dir), str(out["converted"]), "--dtype", "bf16", "--json"],
        ["export", "reshard", str(llama_dir), str(out["resharded"]), "--max-shard-size", "20KB"],
        ["export", "safetensors", str(pickled), str(out["from_pickle"])],
    ]
    report_path = tmp_path / "report.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.without_posix",
            str(report_path),
            json.dumps(verbs),
            str(llama_dir),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())

    # The block held: nothing loaded fcntl, the calls stayed deleted, and imports that
    # wanted fcntl (ours, lazily, where a lock or lease is asked for) were refused.
    assert report["import_failures"] == []
    assert report["fcntl_loaded"] is False
    assert report["fcntl_attempts"] > 0
    assert report["os_functions_left"] == []
    results = {tuple(v["argv"][:2]): v for v in report["verbs"]}
    for result in report["verbs"]:
        assert result["code"] in (0, 1), (result["argv"], result["stderr"])

    listing = json.loads(results[("inspect", str(llama_dir))]["stdout"])
    with safe_open(llama_dir / "model.safetensors", "pt") as source:
        expected = {k: list(source.get_slice(k).get_shape()) for k in source.keys()}  # noqa: SIM118
    assert {t["name"]: t["shape"] for t in listing["tensors"]} == expected

    assert json.loads(results[("check", str(llama_dir))]["stdout"])["clean"] is True
    diff = json.loads(results[("diff", str(llama_dir))]["stdout"])
    assert [c["key"] for c in diff["changed"]] == ["lm_head.weight"]
    expected_diff = (
        (tweaked["lm_head.weight"] - load_file(llama_dir / "model.safetensors")["lm_head.weight"])
        .abs()
        .max()
        .item()
    )
    assert diff["changed"][0]["max_abs_diff"] == expected_diff
    assert json.loads(results[("scan", str(llama_dir))]["stdout"])["clean"] is True

    source = load_file(llama_dir / "model.safetensors")
    converted = _load_folder(out["converted"])
    assert converted.keys() == source.keys()
    for name, tensor in source.items():
        assert torch.equal(converted[name], tensor.to(torch.bfloat16)), name
    resharded = _load_folder(out["resharded"])
    assert len(list(out["resharded"].glob("*.safetensors"))) > 1
    assert all(torch.equal(resharded[name], tensor) for name, tensor in source.items())
    from_pickle = _load_folder(out["from_pickle"])
    assert all(torch.equal(from_pickle[k], v) for k, v in llama_state_dict.items())

    stats = report["stats"]
    tensor = source[stats["name"]].double()
    assert stats["min"] == tensor.min().item()
    assert stats["max"] == tensor.max().item()
    assert abs(stats["mean"] - tensor.mean().item()) < 1e-9
