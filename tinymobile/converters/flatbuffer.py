"""A small, bounds-checked reader for FlatBuffers binaries (tables, vectors, strings, scalars).

Only what a schema-driven reader needs, written so that a hostile file cannot make it read outside
the buffer, loop forever or allocate more than the file's own size: every offset and every length
is checked against the buffer before use, and any violation raises
:class:`~tinymobile.errors.ModelFormatError`.

Binary layout (little-endian, see https://flatbuffers.dev/internals/):

* the root is a ``uoffset`` (u32) at byte 0 pointing to the root table;
* a table starts with an ``soffset`` (i32): its vtable is at ``table - soffset``;
* a vtable is ``u16 vtable_size, u16 table_size, u16 field_offset[...]``; field ``i``'s value sits at
  ``table + field_offset[i]`` (0 or beyond the vtable = absent, use the default);
* tables, vectors and strings are referenced through a ``uoffset`` relative to where it is stored;
* a vector is ``u32 count`` followed by its elements; a string is a byte vector plus a NUL.

Field numbers are the ``id`` order of the schema (the index of the field in its table definition).
"""
from __future__ import annotations

import struct
from typing import List, Optional

import numpy as np

from ..errors import ModelFormatError

#: Largest element count accepted for a vector of tables (a MobileNet has a few hundred).
MAX_TABLE_VECTOR = 1 << 20

_SCALARS = {
    "b": 1, "B": 1, "?": 1, "h": 2, "H": 2, "i": 4, "I": 4, "q": 8, "Q": 8, "f": 4, "d": 8,
}


class FlatBuffer:
    """A read-only FlatBuffers binary held in memory. ``data`` is kept, never copied."""

    def __init__(self, data, what: str = "flatbuffer"):
        self.data = memoryview(data).cast("B") if not isinstance(data, (bytes, bytearray)) else data
        self.size = len(self.data)
        self.what = what

    def error(self, message: str) -> ModelFormatError:
        return ModelFormatError(f"{self.what}: {message}")

    def check(self, pos: int, length: int, what: str) -> None:
        """Raise unless ``[pos, pos + length)`` lies inside the buffer."""
        if pos < 0 or length < 0 or pos + length > self.size:
            raise self.error(f"{what} at byte {pos} (+{length}) is outside the {self.size}-byte file")

    def scalar(self, pos: int, fmt: str, what: str = "value"):
        n = _SCALARS[fmt]
        self.check(pos, n, what)
        return struct.unpack_from("<" + fmt, self.data, pos)[0]

    def deref(self, pos: int, what: str) -> int:
        """Follow the ``uoffset`` stored at ``pos``."""
        target = pos + self.scalar(pos, "I", what)
        if target >= self.size:
            raise self.error(f"{what} points outside the file")
        return target

    def root(self, identifier: Optional[bytes] = None) -> "Table":
        """The root table; ``identifier`` (4 bytes) is checked when given."""
        if self.size < 8:
            raise self.error(f"only {self.size} bytes: too short to be a flatbuffer")
        if identifier is not None and bytes(self.data[4:8]) != identifier:
            raise self.error(f"file identifier is {bytes(self.data[4:8])!r}, expected {identifier!r}")
        return Table(self, self.deref(0, "root offset"), "root table")


class Table:
    """One table of a :class:`FlatBuffer`; fields are read by their schema index."""

    __slots__ = ("fb", "pos", "what", "_vt", "_vt_size")

    def __init__(self, fb: FlatBuffer, pos: int, what: str):
        self.fb, self.pos, self.what = fb, pos, what
        vt = pos - fb.scalar(pos, "i", f"{what} vtable offset")
        vt_size = fb.scalar(vt, "H", f"{what} vtable")
        if vt_size < 4 or vt_size % 2:
            raise fb.error(f"{what} has a malformed vtable (size {vt_size})")
        fb.check(vt, vt_size, f"{what} vtable")
        self._vt, self._vt_size = vt, vt_size

    def _field(self, i: int) -> Optional[int]:
        """Absolute position of field ``i``'s inline value, or None when absent."""
        slot = 4 + 2 * i
        if slot + 2 > self._vt_size:
            return None
        off = self.fb.scalar(self._vt + slot, "H", f"{self.what} vtable")
        return None if off == 0 else self.pos + off

    def has(self, i: int) -> bool:
        return self._field(i) is not None

    def scalar(self, i: int, fmt: str, default=0):
        """Scalar field ``i`` (struct format character ``fmt``), or ``default`` when absent."""
        p = self._field(i)
        return default if p is None else self.fb.scalar(p, fmt, f"{self.what} field {i}")

    def table(self, i: int, what: str = "") -> Optional["Table"]:
        p = self._field(i)
        if p is None:
            return None
        what = what or f"{self.what} field {i}"
        return Table(self.fb, self.fb.deref(p, what), what)

    def _vector(self, i: int, elem_size: int, what: str):
        """(start of the elements, count) of vector field ``i``, or None when absent."""
        p = self._field(i)
        if p is None:
            return None
        v = self.fb.deref(p, what)
        n = self.fb.scalar(v, "I", f"{what} length")
        self.fb.check(v + 4, n * elem_size, f"{what} ({n} elements of {elem_size} bytes)")
        return v + 4, n

    def string(self, i: int, default: Optional[str] = None) -> Optional[str]:
        what = f"{self.what} field {i} (string)"
        vec = self._vector(i, 1, what)
        if vec is None:
            return default
        start, n = vec
        return bytes(self.fb.data[start:start + n]).decode("utf-8", errors="replace")

    def array(self, i: int, dtype: str) -> Optional[np.ndarray]:
        """Vector field ``i`` of scalars as a read-only NumPy view (``dtype`` such as ``'<i4'``)."""
        dt = np.dtype(dtype)
        vec = self._vector(i, dt.itemsize, f"{self.what} field {i} (vector)")
        if vec is None:
            return None
        start, n = vec
        return np.frombuffer(self.fb.data, dtype=dt, count=n, offset=start)

    def tables(self, i: int, what: str) -> List["Table"]:
        """Vector field ``i`` of tables (empty list when absent)."""
        vec = self._vector(i, 4, what)
        if vec is None:
            return []
        start, n = vec
        if n > MAX_TABLE_VECTOR:
            raise self.fb.error(f"{what} has {n} entries: refused")
        return [Table(self.fb, self.fb.deref(start + 4 * k, f"{what}[{k}]"), f"{what}[{k}]")
                for k in range(n)]
