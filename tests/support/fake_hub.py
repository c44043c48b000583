"""A stand-in for the Hugging Face Hub on 127.0.0.1, with the few endpoints the client uses.

- ``GET /api/models/{repo}[/revision/{rev}]``: sha, private, gated, siblings with sizes
- ``GET /api/models/{repo}/tree/{rev}``: the file listing
- ``HEAD`` / ``GET /{repo}/resolve/{rev}/{file}``: X-Repo-Commit, ETag, Content-Length,
  206 + Content-Range for ``Range``
- gated repos: 401 (no token) / 403 (token without access) with ``X-Error-Code: GatedRepo``;
  private or unknown repos: 401 with ``X-Error-Code: RepoNotFound``

Every request is logged with the bytes of body it sent, so tests can assert what an
inspection cost.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

GOOD_TOKEN = "hf_fixture_token_that_has_access"
HOLD_LIMIT_S = 120  # a held body goes on by itself after this (a test that never released it)


@dataclass
class FakeRepo:
    files_by_commit: dict[str, dict[str, bytes]]
    refs: dict[str, str]
    gated: bool = False
    private: bool = False
    allowed_tokens: set[str] = field(default_factory=set)


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    sent: int
    status: int


def folder_files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def fake_commit(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.log: list[Request] = []
        self.ignore_range = False
        # Seconds to wait per 4 kB of file body: makes a download slow enough to cancel.
        self.throttle = 0.0
        # An unset Event here holds every file body after its first 4 kB until it is set:
        # the download is then surely mid-file when a test cancels it, however slow the
        # machine (a throttle only makes that likely).
        self.hold: threading.Event | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def add_repo(
        self,
        repo_id: str,
        files: dict[str, bytes],
        *,
        gated: bool = False,
        private: bool = False,
        allowed_tokens: set[str] | None = None,
        tags: dict[str, dict[str, bytes]] | None = None,
    ) -> str:
        commit = fake_commit(repo_id + "main")
        repo = FakeRepo({commit: files}, {"main": commit}, gated, private, allowed_tokens or set())
        for tag, tag_files in (tags or {}).items():
            tag_commit = fake_commit(repo_id + tag)
            repo.files_by_commit[tag_commit] = tag_files
            repo.refs[tag] = tag_commit
        self.repos[repo_id] = repo
        for files_at_commit in repo.files_by_commit.values():
            for body in files_at_commit.values():
                _etag(body)  # hash once now, not inside a timed request
        return commit

    def start(self) -> FakeHub:
        self._thread.start()
        # Bounded: the server stops by itself even if a test forgets to stop it.
        self._watchdog = threading.Timer(600, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._watchdog.cancel()

    def reset_log(self) -> None:
        with self._lock:
            self.log.clear()

    def requests_for(self, path_part: str) -> list[Request]:
        with self._lock:
            return [r for r in self.log if path_part in r.path]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.log.append(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_HEAD(self) -> None:
                hub._serve(self, head=True)

            def do_GET(self) -> None:
                hub._serve(self, head=False)

        return Handler

    # --- request handling -------------------------------------------------------------

    def _serve(self, handler: BaseHTTPRequestHandler, head: bool) -> None:
        path = urlsplit(handler.path).path
        status, headers, body = self._route(handler, path)
        range_header = handler.headers.get("Range")
        if status == 200 and range_header and "X-Repo-Commit" in headers and not self.ignore_range:
            status, headers, body = _apply_range(range_header, headers, body)
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        # Recorded before the body goes out: a client may return (and its test read the
        # log) as soon as the last byte arrives, before this thread runs on.
        request = Request(handler.command, path, range_header, 0 if head else len(body), status)
        if not path.startswith("/__"):
            self._record(request)
        if not head:
            try:
                self._write_body(handler, body, throttled="X-Repo-Commit" in headers)
            except (BrokenPipeError, ConnectionResetError):
                with self._lock:
                    request.sent = -1

    def _write_body(self, handler: BaseHTTPRequestHandler, body: bytes, throttled: bool) -> int:
        hold = self.hold
        if not (throttled and (self.throttle or hold is not None)):
            handler.wfile.write(body)
            return len(body)
        for start in range(0, len(body), 4096):
            if start and hold is not None:
                hold.wait(HOLD_LIMIT_S)
            handler.wfile.write(body[start : start + 4096])
            handler.wfile.flush()
            time.sleep(self.throttle)
        return len(body)

    def _route(
        self, handler: BaseHTTPRequestHandler, path: str
    ) -> tuple[int, dict[str, str], bytes]:
        if path == "/__stats":  # for the benchmark, which runs the server in its own process
            with self._lock:
                stats = {"requests": len(self.log), "bytes": sum(max(r.sent, 0) for r in self.log)}
                self.log.clear()
            return 200, {"Content-Type": "application/json"}, json.dumps(stats).encode()
        token = (handler.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
        api = re.match(r"^/api/models/([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)(/.*)?)?$", path)
        if api:
            repo_id, kind, rev = api[1], api[2], unquote(api[3] or "main")
            return self._api(repo_id, kind, rev, token)
        resolve = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if resolve:
            return self._resolve(resolve[1], unquote(resolve[2]), unquote(resolve[3]), token)
        return 404, {}, b"not found"

    def _repo_or_error(
        self, repo_id: str, token: str, for_files: bool
    ) -> tuple[FakeRepo | None, tuple[int, dict[str, str], bytes]]:
        repo = self.repos.get(repo_id)
        not_found = (401, {"X-Error-Code": "RepoNotFound"}, b'{"error":"Repository not found"}')
        if repo is None or (repo.private and token not in repo.allowed_tokens):
            return None, not_found
        if for_files and repo.gated and token not in repo.allowed_tokens:
            status = 403 if token else 401
            return None, (status, {"X-Error-Code": "GatedRepo"}, b'{"error":"gated"}')
        return repo, (200, {}, b"")

    def _commit(self, repo: FakeRepo, rev: str) -> str | None:
        if rev in repo.refs:
            return repo.refs[rev]
        return rev if rev in repo.files_by_commit else None

    def _api(
        self, repo_id: str, kind: str | None, rev: str, token: str
    ) -> tuple[int, dict[str, str], bytes]:
        repo, error = self._repo_or_error(repo_id, token, for_files=kind == "tree")
        if repo is None:
            return error
        commit = self._commit(repo, rev)
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b'{"error":"Invalid rev id"}'
        files = repo.files_by_commit[commit]
        if kind == "tree":
            listing = [
                {"type": "file", "path": p, "size": len(b), "oid": _etag(b)}
                for p, b in files.items()
            ]
            return 200, {"Content-Type": "application/json"}, json.dumps(listing).encode()
        siblings = [
            {
                "rfilename": p,
                "size": len(b),
                "blobId": _etag(b),
                **(
                    {"lfs": {"sha256": _etag(b), "size": len(b), "pointerSize": 134}}
                    if _is_lfs(p)
                    else {}
                ),
            }
            for p, b in files.items()
        ]
        info = {
            "_id": commit[:24],
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "private": repo.private,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "lastModified": "2026-01-02T03:04:05.000Z",
            "tags": [],
            "downloads": 0,
            "likes": 0,
            "siblings": siblings,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()

    def _resolve(
        self, repo_id: str, rev: str, filename: str, token: str
    ) -> tuple[int, dict[str, str], bytes]:
        repo, error = self._repo_or_error(repo_id, token, for_files=True)
        if repo is None:
            return error
        commit = self._commit(repo, rev)
        if commit is None:
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"revision not found"
        body = repo.files_by_commit[commit].get(filename)
        if body is None:
            return 404, {"X-Error-Code": "EntryNotFound"}, b"entry not found"
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{_etag(body)}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        return 200, headers, body


@functools.lru_cache(maxsize=256)
def _etag(body: bytes) -> str:
    # Cached: hashing a 500 MB benchmark shard on every request would dominate the timings.
    return hashlib.sha256(body).hexdigest()


def _is_lfs(path: str) -> bool:
    return path.endswith((".safetensors", ".bin"))


def _apply_range(
    range_header: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
    if not match or (not match[1] and not match[2]):
        return 416, {"Content-Range": f"bytes */{len(body)}"}, b""
    if match[1]:
        start = int(match[1])
        end = min(int(match[2]), len(body) - 1) if match[2] else len(body) - 1
    else:
        start, end = max(0, len(body) - int(match[2])), len(body) - 1
    if start >= len(body) or start > end:
        return 416, {"Content-Range": f"bytes */{len(body)}"}, b""
    return (
        206,
        {**headers, "Content-Range": f"bytes {start}-{end}/{len(body)}"},
        body[start : end + 1],
    )


def main() -> None:
    """``python fake_hub.py REPO_ID FOLDER``: serve one folder until stdin closes."""
    repo_id, folder = sys.argv[1], Path(sys.argv[2])
    hub = FakeHub()
    hub.add_repo(repo_id, folder_files(folder))
    hub.start()
    print(hub.endpoint, flush=True)
    sys.stdin.read()
    hub.stop()


if __name__ == "__main__":
    main()
