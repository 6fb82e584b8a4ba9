"""Test helpers shared by the engines tests: a real HTTP file server on 127.0.0.1.

``FileServer`` serves in-memory files, honours ``Range: bytes=N-`` (206 with
Content-Range), records every request it sees, and can cut a transfer mid-file once
(headers promise the whole body, half is sent, the socket is closed), redirect a path
(302) and misreport the start of a ranged answer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass(frozen=True)
class SeenRequest:
    path: str
    range: str | None


class _Handler(BaseHTTPRequestHandler):
    server: FileServer

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        server = self.server
        header = self.headers.get("Range")
        with server.lock:
            server.seen.append(SeenRequest(self.path, header))
            body = server.files.get(self.path)
            cut = self.path in server.cut_once
            server.cut_once.discard(self.path)
        target = server.redirects.get(self.path)
        if target is not None:
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if body is None:
            self.send_error(404)
            return
        start = 0
        if header and server.honour_range:
            start = int(header.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            told = start + server.range_start_shift  # a server that lies about the start
            self.send_header("Content-Range", f"bytes {told}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        if cut:
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)  # SHUT_RDWR: the client sees a short body
            return
        self.wfile.write(payload)


class FileServer(ThreadingHTTPServer):
    """``with FileServer({"/a.bin": b"..."}) as server: server.url("/a.bin")``."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = dict(files)
        self.seen: list[SeenRequest] = []
        self.cut_once: set[str] = set()
        self.honour_range = True
        self.range_start_shift = 0  # added to the start a 206 reports in Content-Range
        self.redirects: dict[str, str] = {}  # path -> Location of a 302
        self.lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,),
                                        daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def __enter__(self) -> FileServer:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


def tiny_onnx_bytes(scale: float = 2.0, *, dynamic_batch: bool = False) -> bytes:
    """A real two-input ONNX model: ``out = x * scale + y`` on float32 [N,3]."""
    import onnx
    from onnx import TensorProto, helper

    batch: int | str = "batch" if dynamic_batch else 1
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 3])
    out = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 3])
    k = helper.make_tensor("k", TensorProto.FLOAT, [1], [scale])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["xk"]),
         helper.make_node("Add", ["xk", "y"], ["out"])],
        "tiny", [x, y], [out], initializer=[k],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # old enough for any onnxruntime we support
    onnx.checker.check_model(model)
    return model.SerializeToString()
