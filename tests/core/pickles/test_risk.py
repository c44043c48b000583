"""Pickle risk: every global listed and classified, nothing ever executed."""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path

import pytest

from ckpt_gui.core.pickles.opcodes import (
    UNRESOLVED,
    classify,
    globals_in_pickle,
    weights_only_allowed_names,
)
from ckpt_gui.core.pickles.risk import pickle_risk
from tests.support.diffscan_data import evil_checkpoint, payloads

ROOT = Path(__file__).resolve().parents[3]


def names(data: bytes) -> list[str]:
    return globals_in_pickle(io.BytesIO(data))


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_reduce_payloads_found_at_every_protocol(marker: Path, protocol: int) -> None:
    allowed = weights_only_allowed_names()
    for expected, payload in payloads(marker).items():
        found = names(pickle.dumps({"weight": 1.0, "x": payload}, protocol=protocol))
        assert expected in found
        verdict = classify(expected, allowed)
        assert not verdict.allowed and verdict.reason


def test_reasons_say_what_the_global_does() -> None:
    allowed = weights_only_allowed_names()
    assert classify("posix.system", allowed).reason.startswith("runs a shell command")
    assert classify("builtins.eval", allowed).reason == "evaluates Python code"
    assert classify("subprocess.Popen", allowed).reason == "starts a process"
    assert "custom class" in classify("mytrainer.Config", allowed).reason
    assert "nn.Module" in classify("torch.nn.modules.linear.Linear", allowed).reason
    assert classify("torch._utils._rebuild_tensor_v2", allowed).allowed


def test_memoized_module_name_is_resolved_through_binget() -> None:
    data = pickle.dumps([os.system, os.getcwd, os.getpid], protocol=4)
    ops = [op.name for op, _, _ in pickletools.genops(data)]
    assert "BINGET" in ops and "MEMOIZE" in ops  # the module string is reused from the memo
    module = os.system.__module__
    assert names(data) == [f"{module}.system", f"{module}.getcwd", f"{module}.getpid"]


def _frame(*parts: bytes) -> bytes:
    return b"\x80\x04" + b"".join(parts) + b"."


def _u(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw


def test_strings_popped_before_stack_global_do_not_confuse_it() -> None:
    # "builtins", "harmless" (popped), "eval": the global is builtins.eval. A scanner
    # that pairs the two most recent strings would report "harmless.eval".
    data = _frame(_u("builtins"), _u("harmless"), b"0", _u("eval"), b"\x93", b"0", b"N")
    assert names(data) == ["builtins.eval"]


def test_marks_dup_and_memo_slots() -> None:
    data = _frame(
        b"(",  # MARK
        _u("decoy1"),
        _u("decoy2"),
        b"1",  # POP_MARK drops both decoys
        _u("os"),
        b"q\x07",  # BINPUT 7: memo slot chosen by the pickle, not by order
        b"0",
        _u("system"),
        b"h\x07",  # BINGET 7 -> "os"
        b"\x94",  # MEMOIZE (slot 1)
        b"0",
        b"h\x07",
        _u("popen"),
        b"\x93",  # STACK_GLOBAL os.popen
        b"0",
        _u("subprocess"),
        b"2",  # DUP: "subprocess", "subprocess"
        b"0",
        _u("run"),
        b"\x93",  # subprocess.run
    )
    assert names(data) == ["os.popen", "subprocess.run"]


def test_global_name_built_at_load_time_is_unresolved_and_refused() -> None:
    # Operands that are not plain strings (here bytes) cannot be checked.
    data = _frame(b"C\x02os", _u("system"), b"\x93")
    found = names(data)
    assert found == [f"{UNRESOLVED}.{UNRESOLVED}"]
    assert not classify(found[0], weights_only_allowed_names()).allowed


def test_extension_registry_opcode_is_refused() -> None:
    data = b"\x80\x02\x82\x01."  # EXT1 1: a global looked up in copyreg's registry
    found = names(data)
    assert len(found) == 1 and not classify(found[0], weights_only_allowed_names()).allowed


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_torch_save_with_os_system(tmp_path: Path, marker: Path, legacy: bool) -> None:
    path = evil_checkpoint(tmp_path / "evil.pt", marker, legacy)
    report = pickle_risk(path)
    assert not report.safe
    refused = {g.name: g.reason for g in report.refused}
    assert refused == {f"{os.system.__module__}.system": "runs a shell command (os.system)"}
    allowed = {g.name for g in report.files[0].globals if g.allowed}
    assert "torch._utils._rebuild_tensor_v2" in allowed


def test_whole_module_save_is_flagged(tmp_path: Path) -> None:
    import torch

    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), tmp_path / "module.pt")
    report = pickle_risk(tmp_path / "module.pt")
    refused = {g.name for g in report.refused}
    assert "torch.nn.modules.linear.Linear" in refused
    assert "torch.nn.modules.container.Sequential" in refused


def test_safe_checkpoints(
    llama_dir: Path, llama_bin_dir: Path, llama_bin_sharded_dir: Path
) -> None:
    assert pickle_risk(llama_dir).safe and not pickle_risk(llama_dir).has_pickles
    for folder in (llama_bin_dir, llama_bin_sharded_dir):
        report = pickle_risk(folder)
        assert report.safe and report.has_pickles
        assert all(f.kind == "pickle" for f in report.files)
    assert len(pickle_risk(llama_bin_sharded_dir).files) == 2


def test_plain_pickle_named_pt_is_scanned(tmp_path: Path, marker: Path) -> None:
    path = tmp_path / "weights.pt"
    path.write_bytes(pickle.dumps(payloads(marker)["builtins.eval"], protocol=0))
    report = pickle_risk(path)
    assert [g.name for g in report.refused] == ["builtins.eval"]


def test_truncated_pickle_keeps_what_was_found(tmp_path: Path, marker: Path) -> None:
    data = pickle.dumps(payloads(marker)["subprocess.Popen"], protocol=4)
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: len(data) - 3])
    report = pickle_risk(path)
    assert "subprocess.Popen" in {g.name for g in report.refused}
    assert report.files[0].problems


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "ckpt_gui", *args], capture_output=True, text=True, env=env
    )


def test_cli_inspect_refuses_but_pickle_risk_explains(tmp_path: Path, marker: Path) -> None:
    path = evil_checkpoint(tmp_path / "evil.pt", marker)
    inspected = cli("inspect", str(path), "--json")
    assert inspected.returncode == 2 and inspected.stdout == ""
    assert inspected.stderr.count("\n") == 1 and "system" in inspected.stderr

    risk = cli("pickle-risk", str(path), "--json")
    assert risk.returncode == 1, risk.stderr
    data = json.loads(risk.stdout)
    assert data["safe"] is False
    assert [g["name"] for g in data["refused"]] == [f"{os.system.__module__}.system"]
    assert data["refused"][0]["reason"].startswith("runs a shell command")

    text = cli("pickle-risk", str(path))
    assert text.returncode == 1 and "REFUSED" in text.stdout


def test_cli_pickle_risk_safe_and_missing(llama_bin_dir: Path, tmp_path: Path) -> None:
    ok = cli("pickle-risk", str(llama_bin_dir))
    assert ok.returncode == 0 and "safe" in ok.stdout
    missing = cli("pickle-risk", str(tmp_path / "nope.pt"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


def test_payload_is_real(tmp_path: Path) -> None:
    """Control: the fixture really runs its command when unpickled, so the marker checks mean something."""
    target = tmp_path / "control"
    data = pickle.dumps(payloads(target)[f"{os.system.__module__}.system"])
    code = "import pickle,sys; pickle.loads(sys.stdin.buffer.read())"
    subprocess.run([sys.executable, "-c", code], input=data, check=True, capture_output=True)
    assert target.exists()


def test_folder_scan_includes_stray_pickles(tmp_path: Path, llama_dir: Path, marker: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(llama_dir, folder)
    evil_checkpoint(folder / "pytorch_model.bin", marker)
    report = pickle_risk(folder)
    kinds = {Path(f.path).name: f.kind for f in report.files}
    assert kinds == {"model.safetensors": "safetensors", "pytorch_model.bin": "pickle"}
    assert not report.safe
