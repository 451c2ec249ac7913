"""A local stand-in for the Hugging Face Hub's file protocol, for tests (127.0.0.1, random port).

It serves what `huggingface_hub.hf_hub_download` asks for, the way the Hub answers:

    HEAD/GET /{repo_id}/resolve/{revision}/{filename}
        200 + X-Repo-Commit, ETag (and X-Linked-Etag / X-Linked-Size) = sha256 of the file,
        Content-Length; or, with `redirect=True`, 302 + Location: /lfs/{sha256} like the
        Hub's LFS files (the download then goes to that "CDN" URL).
        Errors carry X-Error-Code: RepoNotFound / RevisionNotFound / EntryNotFound.
        A private repo needs `Authorization: Bearer <token>`.
    GET /files/{name}        a plain static file (for pooch URL entries and `bdmm setup`
                             downloads; `add_static(..., content_type="text/html")` stands
                             in for a share link's web page).

Every request is logged in `hub.requests` (method, path, headers), so a test can assert that a
cache hit sent nothing. Range requests are honoured. The server runs in a daemon thread;
every connection has a socket timeout, and `stop()` bounds the shutdown.

Use the `local_hub` fixture (`from hub_server import local_hub` in a test module), or
`with LocalHub() as hub:` directly. Point huggingface_hub at it with
`monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)`.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest


@dataclass
class Repo:
    """One model repo: a single commit holding `files`; `refs` maps branch/tag -> commit."""

    commit: str
    files: dict[str, bytes]
    refs: dict[str, str]
    token: str | None = None


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)


_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


class LocalHub:
    """A threaded HTTP server speaking the Hub's file-resolution protocol."""

    def __init__(self, redirect: bool = False) -> None:
        self.repos: dict[str, Repo] = {}
        self.static: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.requests: list[LoggedRequest] = []
        self.redirect = redirect
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- content -----------------------------------------------------------------------------
    def add_repo(self, repo_id: str, files: dict[str, bytes], *, tag: str | None = None,
                 token: str | None = None) -> str:
        """Publish `files` as one commit of `repo_id` (branch main, plus `tag`); returns the commit."""
        digest = hashlib.sha1(repo_id.encode() + b"".join(sorted(hashlib.sha1(v).digest() for v in files.values())))
        commit = digest.hexdigest()
        refs = {"main": commit}
        if tag:
            refs[tag] = commit
        self.repos[repo_id] = Repo(commit=commit, files=dict(files), refs=refs, token=token)
        return commit

    def replace_file(self, repo_id: str, filename: str, content: bytes) -> None:
        """Serve different bytes under the same commit (what a tampering mirror would do)."""
        self.repos[repo_id].files[filename] = content

    def add_static(self, name: str, content: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve `content` at /files/{name} (as `content_type`); returns its URL."""
        self.static[name] = content
        self.content_types[name] = content_type
        return f"{self.endpoint}/files/{name}"

    def count(self, method: str | None = None, contains: str = "") -> int:
        with self._lock:
            return sum(1 for r in self.requests if (method is None or r.method == method) and contains in r.path)

    # --- lifecycle ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        assert self._server is not None, "server not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "LocalHub":
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="local-hub")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "LocalHub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    hub: LocalHub
    timeout = 30  # seconds per connection: a stuck client cannot hang the server (generous: loaded CI machines stall)
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    # ---------------------------------------------------------------------------------------------
    def _log(self) -> None:
        with self.hub._lock:
            self.hub.requests.append(LoggedRequest(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))

    def _error(self, status: int, code: str, commit: str | None = None, message: str = "") -> None:
        self.send_response(status)
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message or code)
        if commit:
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_bytes(self, content: bytes, body: bool, extra: dict[str, str],
                    content_type: str = "application/octet-stream") -> None:
        start, end, status = 0, len(content), 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng.strip())
            if m:
                start = int(m.group(1))
                end = int(m.group(2)) + 1 if m.group(2) else len(content)
                status = 206
        part = content[start:end]
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        self.send_header("Content-Type", content_type)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(part)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(content)}")
        self.end_headers()
        if body:
            self.wfile.write(part)

    def _serve(self, body: bool) -> None:
        self._log()
        path = urlsplit(self.path).path
        if path.startswith("/files/"):
            name = unquote(path[len("/files/"):])
            content = self.hub.static.get(name)
            if content is None:
                return self._error(404, "NotFound")
            return self._send_bytes(content, body, {}, self.hub.content_types.get(name, "application/octet-stream"))
        if path.startswith("/lfs/"):
            sha = path[len("/lfs/"):]
            for repo in self.hub.repos.values():
                for content in repo.files.values():
                    if hashlib.sha256(content).hexdigest() == sha:
                        return self._send_bytes(content, body, {"ETag": f'"{sha}"'})
            return self._error(404, "EntryNotFound")
        m = _RESOLVE.match(path)
        if not m:
            return self._error(404, "NotFound")
        repo = self.hub.repos.get(unquote(m["repo"]))
        if repo is None:
            return self._error(404, "RepoNotFound", message="Repository not found")
        if repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}":
            return self._error(401, "RepoNotFound", message="Invalid credentials")
        rev = unquote(m["rev"])
        commit = rev if rev == repo.commit else repo.refs.get(rev)
        if commit is None:
            return self._error(404, "RevisionNotFound", message="Invalid rev id")
        filename = unquote(m["file"])
        content = repo.files.get(filename)
        if content is None:
            return self._error(404, "EntryNotFound", commit=commit, message="Entry not found")
        # The Hub's etag for an LFS file is its sha256 (stated by the repo at commit time; a
        # tampering server would keep the old one, so use the published digest).
        sha = hashlib.sha256(content).hexdigest()
        headers = {"X-Repo-Commit": commit, "ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"',
                   "X-Linked-Size": str(len(content))}
        if self.hub.redirect:
            self.send_response(302)
            for k, v in headers.items():
                self.send_header(k, v)
            # Another host name for the same server, like the Hub's CDN: huggingface_hub does
            # not follow a cross-host redirect on HEAD and reads the metadata from this answer.
            self.send_header("Location", f"http://localhost:{self.server.server_address[1]}/lfs/{sha}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self._send_bytes(content, body, headers)


def registry_with_datasets(folder: Path, hub: LocalHub, archives: dict[str, Path], html_for: str = "") -> Path:
    """`folder`/registry.toml: the default registry with its [datasets.*] entries replaced by
    `archives` (name -> zip) served by `hub` (kind "dataset" for fashionvideo, else "results";
    licence text "license of <name>"). The entry `html_for` serves a sign-in page instead, as a
    share link does without its download address."""
    from bdmm_cli.hub.registry import DEFAULT_REGISTRY

    text = DEFAULT_REGISTRY.read_text()
    text = text[: text.index("\n[datasets.fashionvideo]")]
    for name, path in archives.items():
        if name == html_for:
            url = hub.add_static(f"share/{name}", b"<html><body>Sign in to OneDrive</body></html>", "text/html")
        else:
            url = hub.add_static(f"dl/{path.name}", path.read_bytes())
        kind = "dataset" if name == "fashionvideo" else "results"
        text += (f'\n[datasets.{name}]\nkind = "{kind}"\nurl = "{url}?e=share"\ndownload_url = "{url}"\n'
                 f'filename = "{path.name}"\nlicense = "license of {name}"\nprovenance = "test"\n')
    reg = folder / "registry.toml"
    reg.write_text(text)
    return reg


@pytest.fixture
def local_hub(monkeypatch):
    """A started LocalHub; HF_ENDPOINT points at it for the test; stopped afterwards."""
    hub = LocalHub().start()
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    try:
        yield hub
    finally:
        hub.stop()
