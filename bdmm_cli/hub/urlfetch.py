"""Download one URL into the cache: progress bar, resumable (HTTP Range), size-checked.

    path = download_url("https://host/archive.zip")   # cache_dir()/downloads/<key>/archive.zip

- A finished download is kept under `cache_dir()/downloads/<sha1 of the URL>/<name>`; asking
  again returns it without touching the network.
- An interrupted one leaves `<name>.part`; the next call asks for the rest with
  `Range: bytes=N-` and appends when the server answers 206 (starting over on a 200).
- The size the server announced (Content-Length / Content-Range) must be what arrived, and
  `expected_size` too when the caller knows it; otherwise the part file is kept (to resume)
  and an error says so.
- A server that answers with an HTML page (a share link's landing page rather than the file)
  raises :class:`NotAFileError`: the caller prints the link for the user to download by hand.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bdmm_cli.errors import MissingResourceError
from bdmm_cli.hub.progress import RichBar
from bdmm_cli.paths import cache_dir

TIMEOUT_S = 30.0
_CHUNK = 1 << 20


class NotAFileError(MissingResourceError):
    """The URL answers with a web page (e.g. a share link needing a browser), not the file."""


def _cache_folder(url: str) -> Path:
    return cache_dir() / "downloads" / hashlib.sha1(url.encode()).hexdigest()[:16]


def _name(url: str, filename: str | None) -> str:
    if filename:
        return Path(filename).name
    tail = Path(unquote(urlsplit(url).path)).name
    return tail or "download"


def cached_download(url: str, filename: str | None = None) -> Path | None:
    """The finished download of `url`, or None (never touches the network)."""
    path = _cache_folder(url) / _name(url, filename)
    return path if path.is_file() else None


def _total(resp, offset: int) -> int | None:
    rng = resp.headers.get("Content-Range", "")
    m = re.match(r"bytes\s+\d+-\d+/(\d+)", rng)
    if m:
        return int(m.group(1))
    length = resp.headers.get("Content-Length")
    if length is None:
        return None
    return int(length) + (offset if resp.status_code == 206 else 0)


def _why(exc, url: str) -> str:
    """A request failure in words, without the HTTP library's internals."""
    import requests

    host = urlsplit(url).hostname or url
    text = str(exc)
    if isinstance(exc, requests.exceptions.ConnectionError):
        if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text:
            return f"the host {host} cannot be found (no network, or a DNS problem)"
        return f"cannot connect to {host} (no network, or the server is down)"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"{host} did not answer in time"
    return text.splitlines()[0] if text else type(exc).__name__


def download_url(url: str, *, filename: str | None = None, expected_size: int = 0, label: str = "",
                 progress: bool = True) -> Path:
    """Download `url` (resuming a partial download) and return the cached file.

    `progress=False` shows no bar (parallel downloads show one bar of their own).

    Raises NotAFileError for an HTML answer, MissingResourceError for network errors, HTTP
    errors and size mismatches (one line naming the URL).
    """
    import requests

    from bdmm_cli.hub.hfenv import offline

    folder = _cache_folder(url)
    path = folder / _name(url, filename)
    if path.is_file():
        return path
    if offline():
        raise MissingResourceError(f"{url} is not in the download cache and offline mode is on")
    folder.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    headers = {"Accept-Encoding": "identity"}  # the bytes as stored: sizes and ranges count those
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        with requests.get(url, headers=headers, stream=True, timeout=TIMEOUT_S, allow_redirects=True) as resp:
            if resp.status_code == 416 and offset:  # the part file is already complete (or wrong)
                part.unlink()
                return download_url(url, filename=filename, expected_size=expected_size, label=label,
                                    progress=progress)
            if resp.status_code not in (200, 206):
                raise MissingResourceError(f"cannot download {url}: the server answered HTTP {resp.status_code}")
            if "text/html" in resp.headers.get("Content-Type", "").lower():
                raise NotAFileError(f"{url} answers with a web page, not the file (a share link that needs a browser)")
            if resp.status_code == 200:
                offset = 0  # the server ignored the Range header: start over
            total = _total(resp, offset)
            mode = "ab" if offset else "wb"
            with open(part, mode) as f, RichBar(desc=label or path.name, total=total, initial=offset,
                                                disable=not progress) as bar:
                for block in resp.iter_content(_CHUNK):
                    f.write(block)
                    bar.update(len(block))
    except requests.exceptions.RequestException as exc:
        raise MissingResourceError(f"cannot download {url}: {_why(exc, url)} (run again to resume)") from None
    got = part.stat().st_size
    want = expected_size or total
    if want and got != want:
        if got > want:
            part.unlink()
        raise MissingResourceError(f"download of {url} is incomplete or wrong: {got} bytes, expected {want} "
                                   "(run again to resume)")
    os.replace(part, path)
    return path
