"""pickle-risk and inspect decide what a file is the way torch.load would.

torch's own answers are the oracle: ``torch.serialization._is_zipfile`` for
zip versus legacy, the weights-only loader (which never runs anything) for
which zip record torch reads, ``_get_allowed_globals`` for the allow list.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

import pytest

from ckpt_gui.core.errors import CheckpointError, UnsafePickleError
from ckpt_gui.core.formats import open_checkpoint
from ckpt_gui.core.pickles.groups import CLASS, CODE, DATA, WEIGHTS_ONLY_ALLOWED, group_of
from ckpt_gui.core.pickles.risk import pickle_risk
from tests.support import pickle_fixtures as fx

SYSTEM = f"{os.system.__module__}.system"


class _SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_static_allow_list_is_torchs() -> None:
    from torch import _weights_only_unpickler as unpickler

    assert frozenset(unpickler._get_allowed_globals()) == WEIGHTS_ONLY_ALLOWED


@pytest.mark.parametrize(
    ("name", "group"),
    [
        (SYSTEM, CODE),
        ("builtins.eval", CODE),
        ("builtins.getattr", CODE),
        ("subprocess.Popen", CODE),
        ("<unresolved>.<unresolved>", CODE),
        ("torch.nn.modules.linear.Linear", CLASS),
        ("transformers.models.bert.modeling_bert.BertModel", CLASS),
        ("ghostpkg_models.GhostDetector", CLASS),
        ("__torch__.torch.nn.modules.linear.Linear", CLASS),
        ("argparse.Namespace", DATA),
        ("numpy._core.multiarray.scalar", DATA),
        ("numpy.core.multiarray._reconstruct", DATA),
        ("collections.OrderedDict", DATA),
        ("torch._utils._rebuild_tensor_v2", DATA),
        ("builtins.set", DATA),
    ],
)
def test_three_groups(name: str, group: str) -> None:
    assert group_of(name) == group


def test_pickle_with_a_zip_appended_is_judged_as_the_pickle(tmp_path: Path) -> None:
    import torch

    marker = tmp_path / "PWNED"
    benign = tmp_path / "benign.pt"
    torch.save({"w": torch.zeros(2)}, benign)
    path = tmp_path / "polyglot.pt"
    path.write_bytes(pickle.dumps(_SystemCall(marker), protocol=2) + benign.read_bytes())
    assert zipfile.is_zipfile(path)  # Python's check looks at the end ...
    with path.open("rb") as stream:
        assert not torch.serialization._is_zipfile(stream)  # ... torch at the start
    report = pickle_risk(path)
    assert report.dangerous and not report.safe
    assert [g.name for g in report.group(CODE)] == [SYSTEM]
    assert report.verdict.startswith("DANGER") and "never load it with torch" in report.verdict
    with pytest.raises(UnsafePickleError):
        open_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize("evil_first", [True, False], ids=["evil-first", "evil-last"])
def test_duplicate_zip_record_judged_as_torch_reads_it(tmp_path: Path, evil_first: bool) -> None:
    import torch

    marker = tmp_path / "PWNED"
    evil, benign = tmp_path / "evil.pt", tmp_path / "benign.pt"
    torch.save({"w": _SystemCall(marker)}, evil)
    torch.save({"w": torch.zeros(2)}, benign)
    with zipfile.ZipFile(evil) as a:
        evil_pickle = a.read("evil/data.pkl")
    path = tmp_path / "dup.pt"
    with (
        zipfile.ZipFile(benign) as source,
        zipfile.ZipFile(path, "w") as out,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")  # "Duplicate name": the point of the test
        for record in source.infolist():
            if record.filename == "benign/data.pkl" and evil_first:
                out.writestr(record.filename, evil_pickle)
            out.writestr(record.filename, source.read(record))
            if record.filename == "benign/data.pkl" and not evil_first:
                out.writestr(record.filename, evil_pickle)
    # Every record is judged, whichever one a loader picks.
    assert SYSTEM in {g.name for g in pickle_risk(path).group(CODE)}
    # Our reader reads the record torch reads; its weights-only loader (which runs
    # nothing) tells which one that is.
    if evil_first:
        torch_sees = torch.load(path, weights_only=True)
        assert list(open_checkpoint(path).tensor_map) == list(torch_sees)
    else:
        with pytest.raises(pickle.UnpicklingError, match="system"):
            torch.load(path, weights_only=True)
        with pytest.raises(UnsafePickleError):
            open_checkpoint(path)
    assert not marker.exists()


def test_whole_model_is_classes_not_danger(tmp_path: Path) -> None:
    path, _, _ = fx.whole_model(tmp_path)
    report = pickle_risk(path)
    assert not report.dangerous and not report.safe  # weights-only refuses it
    classes = {g.name for g in report.group(CLASS)}
    assert "transformers.models.bert.modeling_bert.BertForSequenceClassification" in classes
    data = {g.name for g in report.group(DATA)}
    assert {"argparse.Namespace", "torch._utils._rebuild_parameter"} <= data
    assert "not dangerous" in report.verdict
    json_groups = report.to_json()["groups"]
    assert set(json_groups) == {CODE, CLASS, DATA} and json_groups[CODE] == []


def test_state_dict_with_namespace_is_data_only(tmp_path: Path) -> None:
    path, _ = fx.state_dict_with_args(tmp_path)
    report = pickle_risk(path)
    assert not report.group(CODE) and not report.group(CLASS)
    assert "argparse.Namespace" in {g.name for g in report.group(DATA)}


def test_safetensors_is_judged_by_walking_it_as_torch_would(llama_dir: Path) -> None:
    report = pickle_risk(llama_dir / "model.safetensors")
    assert [f.kind for f in report.files] == ["safetensors"] and report.safe


def test_unreadable_file_is_not_safe(tmp_path: Path) -> None:
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x80\x02" + b"\xff" * 32)
    report = pickle_risk(path)
    assert not report.safe and report.dangerous
    with pytest.raises(CheckpointError):
        open_checkpoint(path)


def polyglot_bytes(marker: Path) -> bytes:
    """Sniffs as safetensors (8-byte length, then '{'), but is a pickle from byte 0.

    Byte 0 is LONG1 and byte 1 its length (7): the integer swallows the rest of the
    header length and the '{', then the payload calls os.system.
    """
    payload = b"0c" + f"{os.system.__module__}\nsystem\n(V touch {marker}\ntR.".encode()
    head = bytes([0x8A, 7, 0, 0, 0, 0, 0, 0]) + b"{"
    header_length = 0x8A + (7 << 8)
    body = payload.ljust(header_length - 1, b" ")
    return head + body + b"\x00" * 16


def test_safetensors_polyglot_is_judged_as_the_pickle_torch_sees(tmp_path: Path) -> None:
    import pickletools

    from ckpt_gui.core.formats.safetensors import sniff

    marker = tmp_path / "PWNED"
    path = tmp_path / "model.safetensors"
    path.write_bytes(polyglot_bytes(marker))
    assert sniff(path.read_bytes()[:64])
    # The standard library's own opcode walk (which runs nothing) sees the call torch would make.
    ops = [(op.name, arg) for op, arg, _ in pickletools.genops(path.read_bytes())]
    assert ("GLOBAL", f"{os.system.__module__} system") in ops and ("REDUCE", None) in ops
    report = pickle_risk(path)
    assert report.files[0].kind == "pickle" and report.dangerous
    assert [g.name for g in report.group(CODE)] == [SYSTEM]
    with pytest.raises(UnsafePickleError):
        open_checkpoint(path)
    assert not marker.exists()


def test_a_polyglot_shard_behind_an_index_is_judged_too(tmp_path: Path) -> None:
    import json

    marker = tmp_path / "PWNED"
    (tmp_path / "model-00001-of-00001.safetensors").write_bytes(polyglot_bytes(marker))
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"w": "model-00001-of-00001.safetensors"}})
    )
    with pytest.raises(UnsafePickleError, match=r"model-00001-of-00001\.safetensors"):
        open_checkpoint(tmp_path)
    with pytest.raises(UnsafePickleError):
        open_checkpoint(tmp_path / "model.safetensors.index.json")
    assert not marker.exists()
