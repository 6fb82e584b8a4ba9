"""engines.download against a real HTTP server on 127.0.0.1 (Range, cuts, hashes)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from engines.download import (
    DownloadCancelled,
    DownloadError,
    HashMismatch,
    InsecureURL,
    check_url,
    fetch,
    part_path,
)
from tests.engines import FileServer

BODY = os.urandom(3 * 1024 * 1024 + 123)  # a few chunks, so a cut lands mid-file
DIGEST = hashlib.sha256(BODY).hexdigest()


def test_plain_download_is_verified_and_renamed(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    seen: list[tuple[int, int]] = []
    with FileServer({"/model.onnx": BODY}) as server:
        got = fetch(server.url("/model.onnx"), dest, sha256=DIGEST, progress=False,
                    on_progress=lambda done, total: seen.append((done, total)))
    assert got == DIGEST
    assert dest.read_bytes() == BODY
    assert not part_path(dest).exists()
    assert seen[-1] == (len(BODY), len(BODY))
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_resumes_with_range_after_a_cut_connection(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    with FileServer({"/model.onnx": BODY}) as server:
        server.cut_once.add("/model.onnx")
        got = fetch(server.url("/model.onnx"), dest, sha256=DIGEST, progress=False)
        seen = list(server.seen)
    assert got == DIGEST and dest.read_bytes() == BODY
    assert len(seen) == 2
    assert seen[0].range is None
    # The retry asked only for what was missing: from the byte the cut stopped at.
    assert seen[1].range is not None
    start = int(seen[1].range.removeprefix("bytes=").rstrip("-"))
    assert 0 < start < len(BODY)


def test_resume_across_calls_keeps_the_part_file(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    with FileServer({"/model.onnx": BODY}) as server:
        server.cut_once.add("/model.onnx")
        with pytest.raises(DownloadError, match="1 attempts"):
            fetch(server.url("/model.onnx"), dest, progress=False, retries=0)
        kept = part_path(dest).stat().st_size
        assert 0 < kept < len(BODY) and not dest.exists()
        fetch(server.url("/model.onnx"), dest, sha256=DIGEST, progress=False)
        assert server.seen[-1].range == f"bytes={kept}-"
    assert dest.read_bytes() == BODY


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    part_path(dest).write_bytes(b"stale bytes from another file")
    with FileServer({"/model.onnx": BODY}) as server:
        server.honour_range = False
        fetch(server.url("/model.onnx"), dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == BODY


def test_wrong_hash_deletes_the_temp_file_and_reports(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    wrong = "0" * 64
    with FileServer({"/model.onnx": BODY}) as server, pytest.raises(HashMismatch) as info:
        fetch(server.url("/model.onnx"), dest, sha256=wrong, progress=False)
    assert info.value.expected == wrong and info.value.got == DIGEST
    assert wrong in str(info.value) and DIGEST in str(info.value)
    assert not dest.exists() and not part_path(dest).exists()


def test_cancel_keeps_the_part_for_a_later_resume(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    cancel = threading.Event()

    def stop_after_first_chunk(done: int, total: int) -> None:
        cancel.set()

    with FileServer({"/model.onnx": BODY}) as server:
        with pytest.raises(DownloadCancelled):
            fetch(server.url("/model.onnx"), dest, progress=False,
                  on_progress=stop_after_first_chunk, cancel=cancel)
        assert part_path(dest).exists() and not dest.exists()
        fetch(server.url("/model.onnx"), dest, sha256=DIGEST, progress=False)
    assert dest.read_bytes() == BODY


def test_404_is_a_download_error_without_retries(tmp_path: Path) -> None:
    with FileServer({}) as server, pytest.raises(DownloadError, match="404"):
        fetch(server.url("/nope.onnx"), tmp_path / "nope.onnx", progress=False)
    assert len(server.seen) == 1


@pytest.mark.parametrize("url", ["http://example.com/m.onnx", "ftp://example.com/m.onnx",
                                 "file:///etc/passwd", "m.onnx"])
def test_only_https_or_local_http(url: str, tmp_path: Path) -> None:
    with pytest.raises(InsecureURL):
        fetch(url, tmp_path / "m.onnx", progress=False)


def test_local_http_and_https_are_allowed() -> None:
    check_url("https://github.com/x/y/releases/download/1.0/a.zip")
    check_url("http://127.0.0.1:8000/a.zip")
    check_url("http://localhost/a.zip")
    # "local" is the URL's host, exactly: not a prefix, a user name, a path or a query
    for url in ("http://127.0.0.1.evil.example/a.zip", "http://localhost.evil.example/a.zip",
                "http://127.0.0.1@evil.example/a.zip", "http://evil.example/127.0.0.1/a.zip",
                "http://evil.example/a.zip?host=localhost", "HTTP://evil.example/a.zip"):
        with pytest.raises(InsecureURL):
            check_url(url)


def test_a_redirect_is_followed_on_this_machine(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    with FileServer({"/model.onnx": BODY}) as server:
        server.redirects["/old.onnx"] = server.url("/model.onnx")
        assert fetch(server.url("/old.onnx"), dest, sha256=DIGEST, progress=False) == DIGEST
    assert dest.read_bytes() == BODY


def test_a_redirect_down_to_plain_http_elsewhere_is_refused(tmp_path: Path) -> None:
    """127.0.0.2 is not this machine's name for itself in the allow-list: plain HTTP to
    it is refused before any request is made."""
    dest = tmp_path / "model.onnx"
    with FileServer({}) as server:
        port = server.server_address[1]
        server.redirects["/model.onnx"] = f"http://127.0.0.2:{port}/model.onnx"
        with pytest.raises(InsecureURL, match=r"127\.0\.0\.2"):
            fetch(server.url("/model.onnx"), dest, progress=False, retries=0)
    assert not dest.exists()


def test_the_expected_hash_may_be_upper_case(tmp_path: Path) -> None:
    dest = tmp_path / "model.onnx"
    with FileServer({"/model.onnx": BODY}) as server:
        assert fetch(server.url("/model.onnx"), dest, sha256=DIGEST.upper(),
                     progress=False) == DIGEST


def test_a_resume_answered_from_another_byte_is_refused(tmp_path: Path) -> None:
    """Appending bytes that start elsewhere would build a file of two halves."""
    dest = tmp_path / "model.onnx"
    part_path(dest).write_bytes(BODY[:1000])
    with FileServer({"/model.onnx": BODY}) as server:
        server.range_start_shift = 10
        with pytest.raises(DownloadError, match="resume at byte 1000, server answered "
                                                "from byte 1010"):
            fetch(server.url("/model.onnx"), dest, progress=False)
    assert not dest.exists()
