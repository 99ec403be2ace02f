"""The wire format between the trusted parent and an untrusted worker: length-prefixed frames, bounded by the reader.

A frame is ``u32 header length | u32 payload length | header (UTF-8 JSON object) | payload (raw bytes)``. The
*reader* states the largest payload it will accept before anything is read, so a worker can never make the
parent allocate more than it asked for (a lie about the length is a protocol violation, not a large read).
Tensors travel as raw little-endian bytes with their dtype and shape in the header; the parent checks the
shape against what it asked for before building a tensor.
"""

from __future__ import annotations

import json
import select
import socket
import struct
import time
from typing import Any

HEADER_LIMIT = 1 << 16  # 64 KiB of JSON is far more than any message needs
_PREFIX = struct.Struct("<II")


class ProtocolError(Exception):
    """The other side broke the protocol (bad framing, oversize frame, wrong shape) or went away."""


class Timeout(ProtocolError):
    """The deadline passed before a whole frame arrived."""


def send(sock: socket.socket, header: dict[str, Any], payload: bytes | memoryview = b"") -> None:
    head = json.dumps(header, separators=(",", ":")).encode()
    if len(head) > HEADER_LIMIT:
        raise ProtocolError(f"header of {len(head)} bytes exceeds {HEADER_LIMIT}")
    sock.sendall(_PREFIX.pack(len(head), len(payload)) + head)
    if len(payload):
        sock.sendall(payload)


def _read_exact(sock: socket.socket, n: int, deadline: float | None) -> bytearray:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("deadline passed")
            ready, _, _ = select.select([sock], [], [], min(left, 1.0))
            if not ready:
                continue
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise ProtocolError("the worker closed the connection")
        got += k
    return buf


def recv(sock: socket.socket, max_payload: int, deadline: float | None = None) -> tuple[dict[str, Any], bytearray]:
    """One frame; raises :class:`ProtocolError` if it is malformed or larger than ``max_payload``."""
    n_head, n_payload = _PREFIX.unpack(bytes(_read_exact(sock, _PREFIX.size, deadline)))
    if n_head > HEADER_LIMIT:
        raise ProtocolError(f"frame header of {n_head} bytes exceeds the {HEADER_LIMIT}-byte limit")
    if n_payload > max_payload:
        raise ProtocolError(f"frame payload of {n_payload} bytes exceeds the {max_payload}-byte limit of this reply")
    try:
        header = json.loads(bytes(_read_exact(sock, n_head, deadline)))
    except (ValueError, RecursionError):
        raise ProtocolError("frame header is not JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not a JSON object")
    return header, _read_exact(sock, n_payload, deadline) if n_payload else bytearray()
