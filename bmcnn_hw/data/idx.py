"""Reader and writer of IDX files (the MNIST format), gzip-compressed or raw.

IDX layout: 2 zero bytes, a type byte (0x08 = uint8), a rank byte, then ``rank``
big-endian uint32 dimensions, then the data in C order.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError

_UINT8 = 0x08


def read_idx_bytes(raw: bytes, *, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an uncompressed IDX file into a uint8 array.

    Raises:
        DataError: on a wrong magic number, unsupported type, or a length that does
            not match the dimensions (truncated or padded file).
    """
    if len(raw) < 4:
        raise DataError(f"{name}: truncated IDX file ({len(raw)} bytes, header needs at least 4)")
    zero, dtype, rank = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != _UINT8 or rank not in (1, 2, 3):
        raise DataError(
            f"{name}: not an MNIST-format IDX file (magic 0x{raw[:4].hex()}, expected "
            "0x00000801 labels or 0x00000803 images)")
    header = 4 + 4 * rank
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} bytes, expected {header})")
    dims = struct.unpack(f">{rank}I", raw[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise DataError(f"{name}: IDX file {what}: {len(raw)} bytes, dimensions {dims} need {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def load_idx_raw(path: Path) -> bytes:
    """Return the uncompressed bytes of an IDX file (``.gz`` or raw).

    Raises:
        DataError: if the file is missing or its gzip stream is corrupt.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    return data


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a uint8 array, validating it.

    Raises:
        DataError: naming the file, for any malformed or truncated input.
    """
    return read_idx_bytes(load_idx_raw(path), name=str(path))


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array of rank 1-3 as IDX bytes (uncompressed)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, _UINT8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a raw IDX file."""
    Path(path).write_bytes(encode_idx(array))
