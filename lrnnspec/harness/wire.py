"""Messages between the harness and the kernel's worker process: JSON trees with tensor leaves.

A message is an 8-byte little-endian header length, a JSON header ``{"tree": ..., "tensors": [...]}``
and a payload. In the tree a tensor is the leaf ``{"__tensor__": i}``; ``tensors[i]`` holds its dtype,
shape and either ``[offset, nbytes]`` into the payload (small tensors, sent by value) or the name of a
shared-memory file (large ones: written once, memory-mapped by the other side, never pickled).
Decoding never unpickles anything, so a reply crafted by a hostile kernel cannot run code in the
harness; it can only be malformed, which :func:`decode` reports as :class:`WireError`.

Shared-memory files live in :data:`SHM_DIR` under a name that starts with the sender's prefix; the
receiver of a reply copies the data out and unlinks the file (:func:`decode` with ``take=True``).
A worker's inputs stay mapped (:func:`decode` with ``take=False``): the kernel computes on the very
memory the harness wrote, so an in-place change to an input is visible to the harness without
trusting the worker to report it.
"""

from __future__ import annotations

import json
import mmap
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

import torch

from lrnnspec.errors import Picklable

SHM_DIR = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
SHARED_BYTES = 1 << 20          # tensors at least this large travel through shared memory
DTYPES = {str(d).removeprefix("torch."): d for d in (
    torch.float64, torch.float32, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2,
    torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool)}


class WireError(Picklable, Exception):
    """A message that does not decode (truncated, not JSON, a tensor that does not fit, a foreign file)."""


class Timeout(Picklable, Exception):
    """No complete frame before the deadline."""


MAX_FRAME = 1 << 30


def send_frame(sock, data: bytes, timeout: float | None = None) -> None:
    """One frame: its length (8 bytes, little-endian), then the bytes."""
    sock.settimeout(timeout)
    sock.sendall(struct.pack("<Q", len(data)))
    sock.sendall(data)


def _read(sock, n: int, deadline: float | None) -> bytes:
    import select
    import time

    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([sock], [], [], left)[0]:
                raise Timeout()
        chunk = sock.recv(min(n - got, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the channel")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_frame(sock, deadline: float | None = None, max_bytes: int = MAX_FRAME) -> bytes:
    """The next frame, read before ``deadline`` (``time.monotonic()`` seconds; None: wait) or
    :class:`Timeout`; :class:`EOFError` when the channel closes; :class:`WireError` for a length
    beyond ``max_bytes`` (what a frame can be is bounded, so garbage cannot make the reader wait
    for gigabytes)."""
    sock.settimeout(None)
    (length,) = struct.unpack("<Q", _read(sock, 8, deadline))
    if length > max_bytes:
        raise WireError(f"a frame of {length} bytes announced (at most {max_bytes})")
    return _read(sock, length, deadline)


class Segments:
    """Names for the shared-memory files one side creates: ``<prefix>-<n>``; ``created`` lists the
    names made since the last :meth:`unlink_created`."""

    def __init__(self, prefix: str):
        self.prefix, self.count, self.created = prefix, 0, []

    def new(self) -> str:
        self.count += 1
        self.created.append(f"{self.prefix}-{self.count}")
        return self.created[-1]

    def unlink_created(self) -> None:
        for name in self.created:
            (SHM_DIR / name).unlink(missing_ok=True)
        self.created = []

    def unlink_all(self) -> None:
        """Remove every file this prefix names (after the other side died holding some)."""
        for path in SHM_DIR.glob(f"{self.prefix}-*"):
            path.unlink(missing_ok=True)


def _bytes_of(t: torch.Tensor) -> memoryview:
    if t.numel() == 0:
        return memoryview(b"")
    t = t.detach().to("cpu").contiguous()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.view(torch.int16)
    elif t.dtype in (torch.float8_e4m3fn, torch.float8_e5m2, torch.bool):
        t = t.view(torch.uint8)
    return memoryview(t.numpy()).cast("B")


def encode(tree: Any, segments: Segments | None = None, shared_bytes: int = SHARED_BYTES) -> bytes:
    """Serialize ``tree`` (dicts with str keys, lists, tuples, str, int, float, bool, None, tensors).
    Tensors of at least ``shared_bytes`` go through shared memory when ``segments`` is given."""
    specs: list[dict] = []
    chunks: list[memoryview] = []
    offset = 0

    def walk(x):
        nonlocal offset
        if isinstance(x, torch.Tensor):
            if x.dtype not in DTYPES.values():
                raise WireError(f"a tensor of dtype {x.dtype} cannot be sent (supported: {', '.join(DTYPES)})")
            data = _bytes_of(x)
            spec = {"dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape)}
            if segments is not None and data.nbytes >= shared_bytes:
                spec["segment"] = name = segments.new()
                fd = os.open(SHM_DIR / name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
                try:
                    os.ftruncate(fd, data.nbytes)
                    if data.nbytes:
                        with mmap.mmap(fd, data.nbytes) as mm:
                            mm[:] = data
                finally:
                    os.close(fd)
            else:
                spec["span"] = [offset, data.nbytes]
                chunks.append(data)
                offset += data.nbytes
            specs.append(spec)
            return {"__tensor__": len(specs) - 1}
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                raise WireError(f"dict keys must be strings, got {sorted(map(repr, x))}")
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [walk(v) for v in x]
        if x is None or isinstance(x, (str, bool, int, float)):
            return x
        raise WireError(f"cannot send a {type(x).__name__}")

    header = json.dumps({"tree": walk(tree), "tensors": specs}).encode()
    return b"".join([struct.pack("<Q", len(header)), header, *chunks])


def _tensor(spec, payload: memoryview, prefix: str | None, take: bool) -> torch.Tensor:
    try:
        dtype = DTYPES[spec["dtype"]]
        shape = [int(s) for s in spec["shape"]]
    except (KeyError, TypeError, ValueError):
        raise WireError(f"bad tensor description {spec!r}") from None
    if any(s < 0 for s in shape):
        raise WireError(f"negative size in shape {shape}")
    count = 1
    for s in shape:
        count *= s
    nbytes = count * torch.empty((), dtype=dtype).element_size()
    if "segment" in spec:
        name = str(spec["segment"])
        if prefix is None or not name.startswith(prefix + "-") or "/" in name:
            raise WireError(f"shared-memory file {name!r} is not one of this channel's")
        path = SHM_DIR / name
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise WireError(f"shared-memory file {name!r}: {exc}") from None
        try:
            if os.fstat(fd).st_size != nbytes:
                raise WireError(f"shared-memory file {name!r} holds {os.fstat(fd).st_size} bytes, not {nbytes}")
            mm = mmap.mmap(fd, nbytes) if nbytes else None
        finally:
            os.close(fd)
            if take:
                path.unlink(missing_ok=True)
        if mm is None:
            return torch.empty(shape, dtype=dtype)
        t = torch.frombuffer(mm, dtype=dtype, count=count).view(shape)
        if take:
            t = t.clone()
            mm.close()
        return t
    try:
        start, size = (int(v) for v in spec["span"])
    except (KeyError, TypeError, ValueError):
        raise WireError(f"bad tensor description {spec!r}") from None
    if size != nbytes or start < 0 or start + size > len(payload):
        raise WireError(f"tensor of {nbytes} bytes does not fit the payload at [{start}, {start + size})")
    if count == 0:
        return torch.empty(shape, dtype=dtype)
    return torch.frombuffer(bytearray(payload[start:start + size]), dtype=dtype, count=count).view(shape)


def decode(message: bytes, prefix: str | None = None, take: bool = True) -> Any:
    """The tree :func:`encode` wrote. Shared-memory tensors must carry ``prefix``; with ``take`` they
    are copied out and their files unlinked, without it they stay mapped (inputs of a kernel call)."""
    view = memoryview(message)
    if len(view) < 8:
        raise WireError("message shorter than its header length")
    (length,) = struct.unpack("<Q", view[:8])
    if length > len(view) - 8:
        raise WireError(f"header of {length} bytes in a message of {len(view)}")
    try:
        header = json.loads(bytes(view[8:8 + length]))
        tree, specs = header["tree"], header["tensors"]
    except (ValueError, KeyError, TypeError):
        raise WireError("header is not the expected JSON") from None
    if not isinstance(specs, list):
        raise WireError("header lists no tensors")
    payload = view[8 + length:]
    made: dict[int, torch.Tensor] = {}

    def walk(x):
        if isinstance(x, dict):
            if set(x) == {"__tensor__"}:
                i = x["__tensor__"]
                if not isinstance(i, int) or not 0 <= i < len(specs):
                    raise WireError(f"tensor reference {i!r} out of range")
                if i not in made:
                    made[i] = _tensor(specs[i], payload, prefix, take)
                return made[i]
            return {k: walk(v) for k, v in x.items()}
        if isinstance(x, list):
            return [walk(v) for v in x]
        return x

    return walk(tree)
