"""Helpers for the hostile-file tests: byte mutations of a seed file, a wall-clock limit per case
and an address-space limit, so a hang or an unbounded allocation fails the test instead of
stalling or swapping the machine."""
from __future__ import annotations

import contextlib
import resource
import signal
import threading

from hypothesis import strategies as st


class Hang(BaseException):
    """Raised in the main thread when a case runs past its time limit (BaseException, so no
    ``except Exception`` in the code under test can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Raise :class:`Hang` in the main thread after ``seconds`` of wall-clock time."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def memory_limit(extra_bytes: int):
    """Cap the process's address space at its current size + ``extra_bytes`` (Linux), so an
    allocation a hostile file asks for fails with MemoryError instead of succeeding."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        limit = _vm_size() + extra_bytes
    except (OSError, RuntimeError):
        yield
        return
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


INTERESTING = [0x00, 0x01, 0x7F, 0x80, 0xFF]


@st.composite
def mutations(draw, size: int):
    """A list of (kind, position, value) edits for a file of ``size`` bytes."""
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "byte", "truncate", "splice", "delete", "insert", "int32"]))
        pos = draw(st.integers(0, max(0, size - 1)))
        if draw(st.booleans()):  # headers and directories live at the ends: aim there often
            pos = draw(st.sampled_from([draw(st.integers(0, min(size, 512) - 1)),
                                        max(0, size - 1 - draw(st.integers(0, min(size, 1024) - 1)))]))
        value = draw(st.integers(0, 2**32 - 1))
        ops.append((kind, pos, value))
    return ops


def mutate(data: bytes, ops) -> bytes:
    """Apply edits from :func:`mutations` to ``data``."""
    b = bytearray(data)
    for kind, pos, value in ops:
        if not b:
            break
        pos %= len(b)
        if kind == "flip":
            b[pos] ^= 1 << (value % 8)
        elif kind == "byte":
            b[pos] = INTERESTING[value % len(INTERESTING)] if value & 256 else value & 0xFF
        elif kind == "truncate":
            del b[pos:]
        elif kind == "splice":  # copy a chunk from elsewhere in the file over pos
            src = value % len(b)
            n = 1 + (value >> 8) % 64
            chunk = b[src:src + n]
            b[pos:pos + len(chunk)] = chunk
        elif kind == "delete":
            del b[pos:pos + 1 + value % 16]
        elif kind == "insert":
            b[pos:pos] = bytes([value & 0xFF]) * (1 + (value >> 8) % 16)
        elif kind == "int32":  # sizes and offsets: overwrite 4 bytes with an extreme integer
            v = [0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, value][value % 6]
            b[pos:pos + 4] = v.to_bytes(4, "little")
    return bytes(b)
