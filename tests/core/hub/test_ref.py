"""Repo ids, revisions and Hub URLs are read the way the Hub writes them; paths stay paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from ckpt_gui.core.hub.ref import HubRef, parse_hub_target
from ckpt_gui.core.targets import hub_ref_for, open_target

LOCAL = "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("org/name", HubRef("org/name")),
        ("meta-llama/Llama-3.1-405B", HubRef("meta-llama/Llama-3.1-405B")),
        ("org/name@v1.0", HubRef("org/name", "v1.0")),
        ("org/name@refs/pr/3", HubRef("org/name", "refs/pr/3")),
        ("org/name@" + "a" * 40, HubRef("org/name", "a" * 40)),
        ("https://huggingface.co/org/name", HubRef("org/name")),
        ("https://huggingface.co/org/name/", HubRef("org/name")),
        ("https://hf.co/org/name/tree/dev", HubRef("org/name", "dev")),
        ("https://huggingface.co/org/name/tree/main/unet", HubRef("org/name", "main", "unet")),
        (
            "https://huggingface.co/org/name/blob/main/model.safetensors",
            HubRef("org/name", "main", "model.safetensors"),
        ),
        (
            "https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/sub/model.safetensors",
            HubRef("org/name", "refs/pr/1", "sub/model.safetensors"),
        ),
        (f"{LOCAL}/org/name/tree/v1", HubRef("org/name", "v1")),
    ],
)
def test_hub_targets_are_parsed(text: str, expected: HubRef) -> None:
    assert parse_hub_target(text, LOCAL) == expected


@pytest.mark.parametrize(
    "text",
    [
        "model.safetensors",
        "./org/name",
        "/abs/org/name",
        "org/name/extra",
        "org/name@",
        "org/na--me",
        "org/name.git",
        "-org/name",
        "https://example.com/org/name",
        "https://huggingface.co/datasets/org/name",
        "https://huggingface.co/org/name/blob/main",
        "https://huggingface.co/org/name/commits/main",
        "https://huggingface.co/org/name/blob/main/../secret",
    ],
)
def test_non_hub_targets_are_not_parsed(text: str) -> None:
    assert parse_hub_target(text, LOCAL) is None


def test_an_existing_local_folder_wins_over_a_repo_id(
    tmp_path: Path, llama_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "org").mkdir()
    (tmp_path / "org" / "name").symlink_to(llama_dir)
    monkeypatch.chdir(tmp_path)
    # No Hub is configured: any network attempt would fail the test.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert hub_ref_for("org/name") is None
    checkpoint = open_target("org/name")
    assert checkpoint.root is not None
    assert checkpoint.format == "safetensors"


@pytest.mark.parametrize(
    "ref",
    [
        HubRef("org/name"),
        HubRef("org/name", "v1"),
        HubRef("org/name", "refs/pr/1"),
        HubRef("org/name", "main", "unet"),
        HubRef("org/name", "refs/pr/2", "sub/model.safetensors"),
    ],
)
def test_str_of_a_ref_reads_back_as_the_same_ref(ref: HubRef) -> None:
    assert parse_hub_target(str(ref)) == ref
