"""Small HTTP reads from the Hub: JSON files and byte ranges, with readable errors.

Requests go through huggingface_hub's shared session and header builder, so the
user's token (``HF_TOKEN`` or the stored login) is found the way the Hub client
finds it; we never read, print or store it ourselves. Every Hub failure becomes a
``CheckpointError`` whose one line says what to do.
"""

from __future__ import annotations

import io
import os
import threading
from dataclasses import dataclass, field
from typing import Any

from ckpt_gui.core.errors import CheckpointError
from ckpt_gui.core.hub.ref import HubRef

# (connect, read) seconds: a stalled server must not hang the inspector.
TIMEOUT = (10.0, 30.0)
# The Hub client reads 100 kB for a safetensors header: 97% of headers fit.
READ_AHEAD = 100_000
MAX_JSON_BYTES = 64 * 1024 * 1024
# A server that ignores Range: we read past this much of a file's start, no further.
MAX_SKIP_BYTES = 1024 * 1024
_TRUE = {"1", "ON", "YES", "TRUE"}


class HubUnreachable(CheckpointError):
    """No network, or offline mode: the caller may fall back to the local cache."""


def offline_mode() -> bool:
    """``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) read now, not at import."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE or bool(constants.HF_HUB_OFFLINE)


def has_token() -> bool:
    """Whether the user is logged in; the token itself never leaves huggingface_hub."""
    from huggingface_hub import get_token

    try:
        return get_token() is not None
    except Exception:
        return False


@dataclass
class Traffic:
    """Requests made and bytes received, shown to the user and checked by tests."""

    requests: int = 0
    bytes_received: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, received: int) -> None:
        with self.lock:
            self.requests += 1
            self.bytes_received += received


class HubClient:
    """One Hub endpoint; counts its traffic."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.traffic = Traffic()

    def _headers(self) -> dict[str, str]:
        from huggingface_hub.utils._headers import build_hf_headers

        headers: dict[str, str] = build_hf_headers(library_name="ckpt-gui")
        return headers

    def file_url(self, repo_id: str, filename: str, revision: str) -> str:
        from huggingface_hub import hf_hub_url

        url: str = hf_hub_url(repo_id, filename, revision=revision, endpoint=self.endpoint)
        return url

    def model_info(self, ref: HubRef) -> Any:
        """The repo's facts at ``ref.revision``: commit sha, siblings with sizes, gated, private."""
        from huggingface_hub import HfApi

        self._check_online(ref)
        api = HfApi(endpoint=self.endpoint, library_name="ckpt-gui")
        try:
            info = api.model_info(
                ref.repo_id, revision=ref.revision, files_metadata=True, timeout=TIMEOUT[1]
            )
        except Exception as exc:
            raise hub_error(ref, exc, self.endpoint) from exc
        finally:
            self.traffic.add(0)
        return info

    def read_json(self, ref: HubRef, filename: str, commit: str) -> Any:
        import json

        raw = self.read_range(ref, filename, commit, 0, MAX_JSON_BYTES, whole=True)
        try:
            return json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{ref.repo_id}/{filename}", f"not valid JSON ({exc})") from None

    def read_range(
        self,
        ref: HubRef,
        filename: str,
        commit: str,
        start: int,
        length: int,
        whole: bool = False,
    ) -> bytes:
        """Bytes ``[start, start + length)`` of a file (fewer at its end).

        The body is streamed and cut at ``length``: a server that ignores ``Range``
        and sends the whole file still costs us only what we asked for.
        """
        self._check_online(ref)
        url = self.file_url(ref.repo_id, filename, commit)
        headers = self._headers()
        if not whole:
            headers["Range"] = f"bytes={start}-{start + length - 1}"
        from huggingface_hub import get_session, hf_raise_for_status

        received = 0
        try:
            with get_session().stream("GET", url, headers=headers, timeout=TIMEOUT[1]) as response:
                if response.status_code >= 400:
                    response.read()
                hf_raise_for_status(response)
                skip = start if response.status_code == 200 and not whole else 0
                if skip > MAX_SKIP_BYTES:
                    raise CheckpointError(
                        f"{ref.repo_id}/{filename}",
                        f"{self.endpoint} ignores range requests: describing this file would "
                        "mean downloading all of it; use `ckpt-gui download` instead",
                    )
                buffer = io.BytesIO()
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if skip:
                        dropped = min(skip, len(chunk))
                        chunk, skip = chunk[dropped:], skip - dropped
                    buffer.write(chunk)
                    if buffer.tell() >= length:
                        break
                data = buffer.getvalue()[:length]
        except CheckpointError:
            raise
        except Exception as exc:
            raise hub_error(ref, exc, self.endpoint, filename) from None
        finally:
            self.traffic.add(received)
        if whole and received >= length:
            raise CheckpointError(
                f"{ref.repo_id}/{filename}", f"larger than {length:,} bytes: not a small JSON file"
            )
        return data

    def _check_online(self, ref: HubRef) -> None:
        if offline_mode():
            raise HubUnreachable(
                str(ref), "HF_HUB_OFFLINE is set and this repo is not in the local cache"
            )


def hub_error(
    ref: HubRef, exc: BaseException, endpoint: str, filename: str = ""
) -> CheckpointError:
    """One line that says what went wrong and what to do; never the token, never a traceback."""
    from huggingface_hub import errors

    name = str(ref) if not filename else f"{ref.repo_id}/{filename}"
    page = f"{endpoint}/{ref.repo_id}"
    logged_in = has_token()
    if isinstance(exc, errors.GatedRepoError):
        if logged_in:
            return CheckpointError(
                name,
                f"gated repo: your account has no access yet; request it on {page} "
                "(or check that your token has read access)",
            )
        return CheckpointError(
            name,
            f"gated repo: request access on {page}, then log in with `hf auth login` "
            "(or set HF_TOKEN)",
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return CheckpointError(name, f"revision '{ref.revision}' not found on {page}")
    if isinstance(exc, errors.RemoteEntryNotFoundError):
        return CheckpointError(
            name, f"file not found in the repo at revision {ref.revision_or_main}"
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        if logged_in:
            return CheckpointError(
                name,
                f"repo not found on {endpoint}, or private and your token has no access to it",
            )
        return CheckpointError(
            name,
            f"repo not found on {endpoint}, or private/gated: if it exists, log in with "
            "`hf auth login` (or set HF_TOKEN)",
        )
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return HubUnreachable(name, "HF_HUB_OFFLINE is set and this repo is not in the local cache")
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        if status == 403:
            return CheckpointError(
                name, f"access denied (HTTP 403): your token lacks permission; see {page}"
            )
        if status == 401:
            return CheckpointError(
                name, "not authorised (HTTP 401): log in with `hf auth login` or set HF_TOKEN"
            )
        return CheckpointError(name, f"the Hub answered HTTP {status}")
    if isinstance(exc, (*_transport_errors(), OSError)):
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        return HubUnreachable(name, f"cannot reach {endpoint} ({reason})")
    detail = " ".join(str(exc).split())[:120]
    return CheckpointError(
        name, f"unexpected answer from {endpoint} ({type(exc).__name__}: {detail})"
    )


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection and timeout errors of the HTTP library huggingface_hub uses (it changed)."""
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        error = getattr(module, "TransportError", None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)
