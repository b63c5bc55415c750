"""A Greengrass nucleus IPC endpoint on a Unix socket, speaking the AWS event-stream RPC wire format.

It stands in for the nucleus's socket only: the component under test uses awsiotsdk's real
GreengrassCoreIPCClientV2 (awscrt's event-stream client), which connects, authenticates and sends its
operations here exactly as on a device. Each request is recorded and answered with an empty response.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
import zlib
from pathlib import Path

APPLICATION_MESSAGE, CONNECT, CONNECT_ACK = 0, 4, 5
CONNECTION_ACCEPTED, TERMINATE_STREAM = 1, 2
TYPE_INT32, TYPE_STRING = 4, 7


def encode(headers: dict[str, int | str], payload: bytes) -> bytes:
    parts = []
    for name, value in headers.items():
        raw = name.encode()
        if isinstance(value, int):
            parts.append(struct.pack(">B", len(raw)) + raw + struct.pack(">Bi", TYPE_INT32, value))
        else:
            data = value.encode()
            parts.append(struct.pack(">B", len(raw)) + raw + struct.pack(">BH", TYPE_STRING, len(data)) + data)
    header_bytes = b"".join(parts)
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack(">II", total, len(header_bytes))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + header_bytes + payload
    return body + struct.pack(">I", zlib.crc32(body))


def decode_headers(data: bytes) -> dict[str, object]:
    headers, pos = {}, 0
    while pos < len(data):
        length = data[pos]
        name = data[pos + 1 : pos + 1 + length].decode()
        pos += 1 + length
        kind = data[pos]
        pos += 1
        if kind in (0, 1):
            headers[name] = kind == 0
        elif kind == 2:
            headers[name] = data[pos]
            pos += 1
        elif kind == 3:
            headers[name] = struct.unpack(">h", data[pos : pos + 2])[0]
            pos += 2
        elif kind == 4:
            headers[name] = struct.unpack(">i", data[pos : pos + 4])[0]
            pos += 4
        elif kind in (5, 8):
            headers[name] = struct.unpack(">q", data[pos : pos + 8])[0]
            pos += 8
        elif kind in (6, 7):
            size = struct.unpack(">H", data[pos : pos + 2])[0]
            raw = data[pos + 2 : pos + 2 + size]
            headers[name] = raw.decode() if kind == 7 else raw
            pos += 2 + size
        elif kind == 9:
            headers[name] = data[pos : pos + 16]
            pos += 16
        else:
            raise ValueError(f"unknown header type {kind}")
    return headers


class NucleusSocket:
    """Accepts one client at a time; records (operation, request) pairs; answers every request with {} (none while
    ``hang`` is set)."""

    def __init__(self, path: Path, token: str = "test-token") -> None:
        self.path = path
        self.token = token
        self.requests: list[tuple[str, dict]] = []
        self.authenticated = False
        self.hang = threading.Event()  # set: requests are recorded and never answered (a hung nucleus)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _read_exact(self, conn: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return data

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def _client(self, conn: socket.socket) -> None:
        with conn:
            try:
                while True:
                    prelude = self._read_exact(conn, 12)
                    total, header_length, _ = struct.unpack(">III", prelude)
                    rest = self._read_exact(conn, total - 12)
                    headers = decode_headers(rest[:header_length])
                    payload = rest[header_length : total - 16]
                    kind = headers.get(":message-type")
                    if kind == CONNECT:
                        self.authenticated = json.loads(payload or b"{}").get("authToken") == self.token
                        conn.sendall(
                            encode(
                                {
                                    ":message-type": CONNECT_ACK,
                                    ":message-flags": CONNECTION_ACCEPTED if self.authenticated else 0,
                                    ":stream-id": 0,
                                },
                                b"",
                            )
                        )
                    elif kind == APPLICATION_MESSAGE:
                        operation = str(headers.get("operation", ""))
                        request = json.loads(payload or b"{}")
                        self.requests.append((operation, request))
                        if self.hang.is_set():
                            continue
                        model = operation.replace("aws.greengrass#", "aws.greengrass#") + "Response"
                        conn.sendall(
                            encode(
                                {
                                    ":message-type": APPLICATION_MESSAGE,
                                    ":message-flags": TERMINATE_STREAM,
                                    ":stream-id": int(headers.get(":stream-id", 0)),
                                    ":content-type": "application/json",
                                    "service-model-type": model,
                                },
                                b"{}",
                            )
                        )
            except (ConnectionError, OSError):
                return

    def published(self) -> list[tuple[str, bytes]]:
        """(topic, payload) of every PublishToIoTCore request received."""
        return [
            (r["topicName"], base64.b64decode(r["payload"]))
            for op, r in self.requests
            if op == "aws.greengrass#PublishToIoTCore"
        ]

    def close(self) -> None:
        self.server.close()
