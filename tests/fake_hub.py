"""A small in-memory Hugging Face Hub over HTTP on 127.0.0.1, for offline push tests.

The real ``huggingface_hub`` client talks to it (``HfApi(endpoint=hub.url)`` or ``HF_ENDPOINT``), so the
tests exercise the actual requests: repo creation, branch creation, tree listing, file resolve, YAML
validation, preupload, the Git LFS batch API and the NDJSON commit. Every request is recorded, and
commits can be made to fail (HTTP 500 or a dropped connection) to test retries, including the dangerous
case of a commit that is applied but whose response is lost ("apply-drop", "apply-500"), and a commit by
another client landing first ("race": the Hub then answers 412 to a stale ``parentCommit``). Tokens can be
checked (``valid_tokens``): any other bearer gets 401 as the real Hub answers a bad token.
Dataset repos can be served from a folder (``add_repo_from_folder``, e.g. the Hub layout that
``mmla data sample`` writes), with git oids and LFS sha256 in tree listings, ``Range`` resumes, and downloads
that drop part-way (``fail_downloads``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

LFS_SUFFIXES = (".parquet", ".safetensors", ".bin", ".mp4", ".tar.gz", ".tgz", ".tar", ".zip")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    authorization: str | None
    range: str | None = None
    """The ``Range`` header (a resumed download)."""

    def json(self) -> Any:
        return json.loads(self.body)

    def ndjson(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool = False
    branches: dict[str, dict[str, bytes]] = field(default_factory=lambda: {"main": {}})
    shas: dict[str, str] = field(default_factory=lambda: {"main": "0" * 40})
    commits: list[dict[str, Any]] = field(default_factory=list)
    """Applied commits, oldest first: branch, sha, parent, summary, description, header, files."""
    prs: int = 0


class FakeHub:
    """State + request log.

    ``fail_commits`` is a queue of failure modes for the next commit requests: an HTTP status ("500", "503")
    or "drop" (no response; nothing applied), "apply-drop" / "apply-500" (the commit IS applied, then the
    connection drops or a 500 comes back), "race" (another client's commit lands on the branch first).
    ``valid_tokens``: when set, requests whose bearer token is not in it get 401.
    """

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[Request] = []
        self.fail_commits: list[str] = []
        self.valid_tokens: set[str] | None = None
        self.fail_downloads: dict[str, list[int]] = {}
        """Per file path, a queue of byte counts: the next GET of that file sends that many bytes, then drops
        (a negative count: HTTP 500 instead)."""
        self.lfs_store: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.url = ""

    # -- helpers for tests -------------------------------------------------------------------------
    def add_repo(self, repo_id: str, repo_type: str = "model", files: dict[str, bytes] | None = None) -> Repo:
        repo = Repo(repo_type, repo_id)
        repo.branches["main"] = dict(files or {})
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def add_repo_from_folder(self, repo_id: str, folder: Path, repo_type: str = "dataset") -> Repo:
        """A repo holding every file under ``folder`` (e.g. the Hub layout of ``mmla data sample``), at a
        commit sha derived from the content, as the real Hub has."""
        files = {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
        repo = self.add_repo(repo_id, repo_type, files)
        repo.shas["main"] = hashlib.sha1(
            json.dumps(sorted((p, _git_oid(c)) for p, c in files.items())).encode()
        ).hexdigest()
        return repo

    def files(self, repo_id: str, repo_type: str = "model", branch: str = "main") -> dict[str, bytes]:
        return self.repos[(repo_type, repo_id)].branches[branch]

    def calls(self, method: str | None = None, pattern: str = "") -> list[Request]:
        return [r for r in self.requests if (method is None or r.method == method) and re.search(pattern, r.path)]

    def commit_requests(self) -> list[Request]:
        return self.calls("POST", r"/commit/")


_REPO = r"/api/(?P<type>model|dataset|space)s/(?P<repo>[^/]+/[^/]+)"


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def parse_request(self) -> bool:
            """Answer 401, as the real Hub does, to a bearer token not in ``hub.valid_tokens``."""
            if not super().parse_request():
                return False
            auth = self.headers.get("Authorization")
            if hub.valid_tokens is None or self.path.startswith("/api/agent-harnesses"):
                return True
            if auth in {f"Bearer {t}" for t in hub.valid_tokens}:
                return True
            with hub.lock:
                hub.requests.append(Request(self.command, self.path, {}, b"", auth))
            self.close_connection = True  # the body is not read: do not reuse the connection
            self._error(401, "Unauthorized", "Invalid credentials in Authorization header")
            return False

        # -- plumbing ------------------------------------------------------------------------------
        def _send(self, status: int, payload: Any = None, *, headers: dict[str, str] | None = None) -> None:
            body = b"" if payload is None else payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            if not isinstance(payload, bytes):
                self.send_header("Content-Type", "application/json")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _error(self, status: int, code: str, message: str) -> None:
            self._send(status, {"error": message}, headers={"X-Error-Code": code, "X-Error-Message": message})

        def _read(self) -> Request:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parsed = urllib.parse.urlsplit(self.path)
            req = Request(
                self.command,
                urllib.parse.unquote(parsed.path),
                urllib.parse.parse_qs(parsed.query),
                body,
                self.headers.get("Authorization"),
                self.headers.get("Range"),
            )
            with hub.lock:
                hub.requests.append(req)
            return req

        def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
            repo = hub.repos.get((repo_type, repo_id))
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository Not Found for url: {self.path}.")
            return repo

        def _branch(self, repo: Repo, rev: str) -> dict[str, bytes] | None:
            files = repo.branches.get(urllib.parse.unquote(rev))
            if files is None:  # a commit sha: the branch whose head it is
                files = next((repo.branches[b] for b, s in repo.shas.items() if s == rev and b in repo.branches), None)
            if files is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return files

        def do_HEAD(self) -> None:
            self.do_GET()

        # -- GET -----------------------------------------------------------------------------------
        def do_GET(self) -> None:
            req = self._read()
            path = req.path
            if m := re.fullmatch(_REPO + r"/commits/(?P<rev>[^/]+)", path):
                repo = self._repo(m["type"], m["repo"])
                if repo is None or self._branch(repo, m["rev"]) is None:
                    return
                self._send(200, _history(repo, m["rev"]))
            elif m := re.fullmatch(_REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?", path):
                repo = self._repo(m["type"], m["repo"])
                if repo is None or (files := self._branch(repo, m["rev"])) is None:
                    return
                sub = (m["sub"] or "").strip("/")
                entries = [_tree_entry(p, c) for p, c in sorted(files.items()) if not sub or p.startswith(sub + "/")]
                if sub and not entries:
                    self._error(404, "EntryNotFound", f"{sub} does not exist on {m['rev']}")
                    return
                self._send(200, entries)
            elif m := re.fullmatch(_REPO + r"(?:/revision/(?P<rev>[^/]+))?", path):
                repo = self._repo(m["type"], m["repo"])
                rev = m["rev"] or "main"
                if repo is None or (files := self._branch(repo, rev)) is None:
                    return
                self._send(
                    200,
                    {
                        "id": repo.repo_id,
                        "sha": _commit_of(repo, rev),
                        "private": repo.private,
                        "siblings": [{"rfilename": p} for p in sorted(files)],
                    },
                )
            elif m := re.fullmatch(
                r"/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)", path
            ):
                repo_type = (m["type"] or "models")[:-1]
                repo = self._repo(repo_type, m["repo"])
                if repo is None or (files := self._branch(repo, m["rev"])) is None:
                    return
                if m["file"] not in files:
                    self._error(404, "EntryNotFound", f"{m['file']} does not exist")
                    return
                content = files[m["file"]]
                etag = f'"{hashlib.sha256(content).hexdigest()}"'
                headers = {"ETag": etag, "X-Repo-Commit": _commit_of(repo, m["rev"]), "Accept-Ranges": "bytes"}
                start = _range_start(self.headers.get("Range"))
                if start:  # resume: 206 with the rest of the file
                    headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
                    self._send_file(206, content[start:], headers, m["file"])
                else:
                    self._send_file(200, content, headers, m["file"])
            else:
                self._error(404, "NotFound", f"unhandled GET {path}")

        # -- PUT (LFS object upload) ---------------------------------------------------------------
        def do_PUT(self) -> None:
            req = self._read()
            if m := re.fullmatch(r"/lfs-upload/(?P<oid>[0-9a-f]{64})", req.path):
                if hashlib.sha256(req.body).hexdigest() != m["oid"]:
                    self._error(400, "BadRequest", "sha256 mismatch")
                    return
                hub.lfs_store[m["oid"]] = req.body
                self._send(200, {})
            else:
                self._error(404, "NotFound", f"unhandled PUT {req.path}")

        # -- POST ----------------------------------------------------------------------------------
        def do_POST(self) -> None:
            req = self._read()
            path = req.path
            if path == "/api/repos/create":
                body = req.json()
                repo_type = body.get("type") or "model"
                repo_id = f"{body.get('organization') or 'user'}/{body['name']}"
                prefix = "" if repo_type == "model" else f"{repo_type}s/"
                if (repo_type, repo_id) in hub.repos:
                    self._send(
                        409,
                        {"error": "You already created this repo", "url": f"{hub.url}/{prefix}{repo_id}"},
                        headers={"X-Error-Code": "RepoExists"},
                    )
                    return
                repo = hub.add_repo(repo_id, repo_type)
                repo.private = body.get("visibility") == "private" or bool(body.get("private"))
                self._send(200, {"url": f"{hub.url}/{prefix}{repo_id}", "name": repo_id, "id": repo_id})
            elif path == "/api/validate-yaml":
                body = req.json()
                content = body.get("content", "")
                match = re.match(r"^---\s*\n(.*?)\n---\s*\n", content, flags=re.S)
                try:
                    meta = yaml.safe_load(match.group(1)) if match else {}
                except yaml.YAMLError as err:
                    self._send(400, {"error": f"Invalid YAML: {err}"})
                    return
                if meta is not None and not isinstance(meta, dict):
                    self._send(400, {"error": "YAML metadata must be a mapping"})
                    return
                self._send(200, {"errors": [], "warnings": []})
            elif m := re.fullmatch(_REPO + r"/branch/(?P<branch>.+)", path):
                repo = self._repo(m["type"], m["repo"])
                if repo is None:
                    return
                branch = m["branch"]
                if branch in repo.branches:
                    self._error(409, "BranchExists", "Reference already exists")
                    return
                repo.branches[branch] = dict(repo.branches["main"])
                self._send(200, {})
            elif m := re.fullmatch(_REPO + r"/preupload/(?P<rev>.+)", path):
                if self._repo(m["type"], m["repo"]) is None:
                    return
                files = req.json()["files"]
                self._send(
                    200,
                    {
                        "files": [
                            {
                                "path": f["path"],
                                "uploadMode": "lfs" if f["path"].endswith(LFS_SUFFIXES) else "regular",
                                "shouldIgnore": False,
                            }
                            for f in files
                        ]
                    },
                )
            elif re.fullmatch(r"/(?:datasets/|spaces/)?[^/]+/[^/]+\.git/info/lfs/objects/batch", path):
                objects = req.json()["objects"]
                self._send(
                    200,
                    {
                        "transfer": "basic",
                        "objects": [
                            {
                                "oid": o["oid"],
                                "size": o["size"],
                                "authenticated": True,
                                **(
                                    {}
                                    if o["oid"] in hub.lfs_store
                                    else {"actions": {"upload": {"href": f"{hub.url}/lfs-upload/{o['oid']}"}}}
                                ),
                            }
                            for o in objects
                        ],
                    },
                    headers={"Content-Type": "application/vnd.git-lfs+json"},
                )
            elif m := re.fullmatch(_REPO + r"/commit/(?P<rev>.+)", path):
                self._commit(req, m["type"], m["repo"], urllib.parse.unquote(m["rev"]))
            else:
                self._error(404, "NotFound", f"unhandled POST {path}")

        def _commit(self, req: Request, repo_type: str, repo_id: str, rev: str) -> None:
            with hub.lock:
                failure = hub.fail_commits.pop(0) if hub.fail_commits else None
            if failure == "drop":
                self._drop()
                return
            if failure is not None and not failure.startswith("apply-") and failure != "race":
                self._error(int(failure), "ServerError", "Internal Error - We're working hard to fix this")
                return
            repo = self._repo(repo_type, repo_id)
            if repo is None:
                return
            create_pr = req.query.get("create_pr") == ["1"]
            if rev not in repo.branches:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return
            if failure == "race":  # another client commits to the branch between our read and our commit
                other = dict(repo.branches[rev], **{"other-client.txt": b"theirs"})
                _apply(repo, rev, other, {"summary": "a commit by someone else"})
            lines = req.ndjson()
            header: dict[str, Any] = next((line["value"] for line in lines if line["key"] == "header"), {})
            parent = header.get("parentCommit")
            if parent is not None and parent != repo.shas.get(rev, "0" * 40):
                self._error(412, "PreconditionFailed", "A commit has happened since. Please refresh and try again.")
                return
            files = dict(repo.branches[rev])
            for line in lines:
                key, value = line["key"], line["value"]
                if key == "file":
                    files[value["path"]] = base64.b64decode(value["content"])
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs_store:
                        self._error(422, "LfsMissing", f"LFS object {value['oid']} was not uploaded")
                        return
                    files[value["path"]] = hub.lfs_store[value["oid"]]
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    files = {p: c for p, c in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            payload: dict[str, Any] = {}
            if create_pr:
                repo.prs += 1
                branch = f"refs/pr/{repo.prs}"
                repo.shas.setdefault(branch, repo.shas.get(rev, "0" * 40))
                payload["pullRequestUrl"] = f"{hub.url}/{prefix}{repo_id}/discussions/{repo.prs}"
            else:
                branch = rev
            sha = _apply(repo, branch, files, header)
            payload.update({"commitOid": sha, "commitUrl": f"{hub.url}/{prefix}{repo_id}/commit/{sha}"})
            if failure == "apply-drop":
                self._drop()
            elif failure == "apply-500":
                self._error(500, "ServerError", "Internal Error - We're working hard to fix this")
            else:
                self._send(200, payload)

        def _send_file(self, status: int, body: bytes, headers: dict[str, str], path: str) -> None:
            """Send a file, or (``hub.fail_downloads``) part of it and then drop the connection."""
            with hub.lock:
                queue = hub.fail_downloads.get(path) if self.command == "GET" else None
                cut = queue.pop(0) if queue else None
            if cut is None:
                self._send(status, body, headers=headers)
                return
            if cut < 0:
                self._error(500, "ServerError", "Internal Error - We're working hard to fix this")
                return
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self._drop()

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.shutdown(2)  # no response at all: the client sees a dropped connection

    return Handler


def _git_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _tree_entry(path: str, content: bytes) -> dict[str, Any]:
    """A tree listing entry as the Hub sends it: git oid, and for LFS files their sha256 (``lfs.oid``)."""
    if not path.endswith(LFS_SUFFIXES):
        return {"type": "file", "path": path, "size": len(content), "oid": _git_oid(content)}
    sha256 = hashlib.sha256(content).hexdigest()
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {len(content)}\n".encode()
    return {"type": "file", "path": path, "size": len(content), "oid": _git_oid(pointer),
            "lfs": {"oid": sha256, "size": len(content), "pointerSize": len(pointer)}}  # fmt: skip


def _commit_of(repo: Repo, rev: str) -> str:
    """The commit sha of a branch, or ``rev`` itself when it is the sha of a branch head."""
    return repo.shas.get(rev) or (rev if rev in repo.shas.values() else "0" * 40)


def _range_start(header: str | None) -> int:
    """The start of a ``Range: bytes=N-`` request (what huggingface_hub sends to resume), else 0."""
    m = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(m[1]) if m else 0


def _apply(repo: Repo, branch: str, files: dict[str, bytes], header: dict[str, Any]) -> str:
    """Make ``files`` the new state of ``branch`` as one commit; returns its sha (unique per commit)."""
    parent = repo.shas.get(branch, "0" * 40)
    sha = hashlib.sha1(
        json.dumps(
            [parent, len(repo.commits), sorted((p, hashlib.sha1(c).hexdigest()) for p, c in files.items())]
        ).encode()
    ).hexdigest()
    repo.branches[branch] = files
    repo.shas[branch] = sha
    repo.commits.append(
        {
            "branch": branch,
            "sha": sha,
            "parent": parent,
            "summary": header.get("summary", ""),
            "description": header.get("description", ""),
            "header": header,
            "files": sorted(files),
        }
    )
    return sha


def _history(repo: Repo, branch: str) -> list[dict[str, Any]]:
    """``GET .../commits/{rev}``: the branch's commits, newest first, following parents from its head."""
    by_sha = {c["sha"]: c for c in repo.commits}
    out, sha = [], repo.shas.get(branch, "0" * 40)
    while sha in by_sha:
        c = by_sha[sha]
        message = c["summary"] + (f"\n\n{c['description']}" if c["description"] else "")
        out.append(
            {
                "id": sha,
                "title": c["summary"],
                "message": message,
                "authors": [{"user": "user"}],
                "date": "2026-01-01T00:00:00.000Z",
            }
        )
        sha = c["parent"]
    out.append({"id": sha, "title": "initial commit", "message": "", "authors": [], "date": "2026-01-01T00:00:00.000Z"})
    return out


@contextmanager
def serve() -> Iterator[FakeHub]:
    """Start a fake Hub on a random loopback port for the duration of the ``with`` block."""
    hub = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hub))
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve_as_hub(monkeypatch: Any, tmp_path: Path) -> Iterator[FakeHub]:
    """:func:`serve`, with ``huggingface_hub`` pointed at it for the ``with`` block (``monkeypatch`` undoes it).

    Sets what ``HF_ENDPOINT`` sets at import time (the endpoint and the resolve URL template, or
    ``hf_hub_download`` keeps the default host), keeps the agent-harness file in ``tmp_path``, and turns Xet
    off (the fake Hub speaks Git LFS).
    """
    import huggingface_hub.constants as hf_constants

    with serve() as hub:
        monkeypatch.setattr(hf_constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(
            hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        monkeypatch.setattr(hf_constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agents.json"))
        monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
        yield hub
