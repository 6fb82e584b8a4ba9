"""Resumable, verified HTTPS downloads for model files.

The body goes to ``<dest>.part``; an interrupted transfer resumes from the bytes already
there with an HTTP ``Range`` request. The file is hashed while it streams and only renamed
to ``dest`` once the hash matches, so a half-written or tampered file never sits where the
app looks for models.
"""

from __future__ import annotations

import http.client
import logging
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from engines.base import ModelFileError
from engines.fileio import HashingCancelled, sha256_file

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]
"""``callback(done_bytes, total_bytes)``; ``total_bytes`` is 0 while unknown."""

CHUNK = 1 << 20
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class DownloadError(ModelFileError):
    """A download failed (network, server, or verification)."""


class InsecureURL(DownloadError):
    """Only HTTPS is allowed (plain HTTP only for the local test server)."""


class HashMismatch(DownloadError):
    """The downloaded bytes do not have the expected sha256; the temporary file is gone."""

    def __init__(self, url: str, expected: str, got: str) -> None:
        self.url = url
        self.expected = expected
        self.got = got
        super().__init__(f"{url}: sha256 mismatch: expected {expected}, got {got} "
                         "(the partial file was deleted)")


class DownloadCancelled(DownloadError):
    """The cancel event was set; the ``.part`` file is kept so a later call resumes."""


def check_url(url: str) -> None:
    """Raise ``InsecureURL`` unless ``url`` is HTTPS, or HTTP to this machine."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and parts.hostname in LOCAL_HOSTS:
        return
    raise InsecureURL(f"{url}: refusing to download over {parts.scheme or 'no scheme'}; "
                      "expected https:// (plain http only for 127.0.0.1/localhost)")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (GitHub and Hugging Face use them) but never down to plain HTTP."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def fetch(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    retries: int = 3,
    timeout: float = 30.0,
) -> str:
    """Download ``url`` to ``dest`` (atomically) and return the file's sha256.

    Resumes ``<dest>.part`` if present. When ``sha256`` is given and the bytes differ, the
    partial file is deleted and ``HashMismatch`` reports expected vs got. A connection cut
    mid-file is retried ``retries`` times, each resuming where the last stopped.
    """
    check_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    opener = urllib.request.build_opener(_SafeRedirects())
    last_error: Exception | None = None
    for attempt in range(1, retries + 2):
        try:
            _transfer(opener, url, part, progress=progress, on_progress=on_progress,
                      cancel=cancel, timeout=timeout)
            break
        except DownloadCancelled:
            raise
        except DownloadError:
            raise
        except (OSError, http.client.HTTPException) as exc:
            # URLError, connection resets, timeouts and IncompleteRead all land here.
            last_error = exc
            if isinstance(exc, urllib.error.HTTPError) and exc.code < 500:
                raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
            log.warning("download of %s interrupted (%s); attempt %d of %d", url, exc,
                        attempt, retries + 1)
    else:
        raise DownloadError(f"{url}: failed after {retries + 1} attempts: {last_error}")
    try:
        got = sha256_file(part, cancel=cancel)
    except HashingCancelled as exc:
        raise DownloadCancelled(str(exc)) from exc
    if sha256 is not None and got != sha256.lower():
        part.unlink(missing_ok=True)
        raise HashMismatch(url, sha256.lower(), got)
    os.replace(part, dest)
    return got


def _transfer(
    opener: urllib.request.OpenerDirector,
    url: str,
    part: Path,
    *,
    progress: bool,
    on_progress: ProgressCallback | None,
    cancel: threading.Event | None,
    timeout: float,
) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "swapcam"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            # The part is already whole (or the server dislikes it): start over once.
            log.info("server refused the resume range for %s; restarting", url)
            part.unlink()
            _transfer(opener, url, part, progress=progress, on_progress=on_progress,
                      cancel=cancel, timeout=timeout)
            return
        raise
    with response:
        status = response.status
        if offset and status != 206:
            log.info("server ignored the Range request for %s; restarting from zero", url)
            offset = 0
        elif offset:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != offset:
                raise DownloadError(f"{url}: asked to resume at byte {offset}, "
                                    f"server answered from byte {start}")
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else 0
        bar = _progress_bar(part.name[: -len(".part")], total, offset) if progress else None
        done = offset
        try:
            with open(part, "ab" if offset else "wb") as out:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise DownloadCancelled(f"{url}: cancelled at {done} bytes "
                                                f"(kept {part} to resume)")
                    block = response.read(CHUNK)
                    if not block:
                        break
                    out.write(block)
                    done += len(block)
                    if bar is not None:
                        bar.update(len(block))
                    if on_progress is not None:
                        on_progress(done, total)
        finally:
            if bar is not None:
                bar.close()
        if total and done != total:
            raise http.client.IncompleteRead(b"", total - done)


def _content_range_start(value: str) -> int:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _progress_bar(label: str, total: int, initial: int):  # type: ignore[no-untyped-def]
    from tqdm import tqdm

    return tqdm(total=total or None, initial=initial, unit="B", unit_scale=True,
                unit_divisor=1024, desc=label, leave=False)
