"""HyperLogLog registers (lg_k=12) built from whole numpy arrays.

``datasketches.hll_sketch`` has no array update: a Python loop over a million distinct
values costs ~0.2 s a column. These registers follow the same algorithm (2**12 one-byte
registers; each keeps the longest run of leading zeros among the hashes that land in it),
are filled with numpy in a few passes, merge by an elementwise maximum and are estimated
with Ertl's bias-free estimator (arXiv:1702.01284), ~1.6 % standard error.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

LG_K = 12
M = 1 << LG_K
_Q = 64 - LG_K  # hash bits left for the leading-zero count
_C1 = 0xFF51AFD7ED558CCD
_C2 = 0xC4CEB9FE1A85EC53
_SEED = 0x9E3779B97F4A7C15


def _fmix(z: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser, in place on a uint64 array."""
    import numpy as np

    tmp = np.empty_like(z)
    for constant in (_C1, _C2):
        np.right_shift(z, np.uint64(33), out=tmp)
        z ^= tmp
        z *= np.uint64(constant)
    np.right_shift(z, np.uint64(33), out=tmp)
    z ^= tmp
    return z


def hash_floats(x: np.ndarray) -> np.ndarray:
    """64-bit hashes of float64 values (-0.0 hashes as 0.0)."""
    import numpy as np

    z = np.add(x, 0.0, dtype=np.float64).view(np.uint64)
    z ^= np.uint64(_SEED)
    return _fmix(z)


def hash_strings(values: pa.Array) -> np.ndarray:
    """64-bit hashes of the bytes of each string or binary value (null-free array).

    Each string is read as 8-byte little-endian words, one pass per word position over
    the strings that long, so the work follows the number of strings, not of bytes.
    """
    import numpy as np
    import pyarrow as pa

    arr = values if pa.types.is_large_binary(values.type) else values.cast(pa.large_binary())
    n = len(arr)
    if n == 0:
        return np.zeros(0, np.uint64)
    _, offsets_buf, data_buf = arr.buffers()[:3]
    offsets = np.frombuffer(offsets_buf, np.int64)[arr.offset : arr.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.zeros(end - start + 8, np.uint8)
    if data_buf is not None and end > start:
        data[: end - start] = np.frombuffer(data_buf, np.uint8)[start:end]
    windows = np.lib.stride_tricks.sliding_window_view(data, 8)
    rel = offsets[:-1] - start
    lengths = np.diff(offsets)
    h = lengths.astype(np.uint64) * np.uint64(_SEED)
    word_index = 0
    while True:
        sel = np.flatnonzero(lengths > 8 * word_index)
        if len(sel) == 0:
            return _fmix(h)
        word = np.ascontiguousarray(windows[rel[sel] + 8 * word_index]).view("<u8").ravel()
        left = np.minimum(lengths[sel] - 8 * word_index, 8).astype(np.uint64)
        short = left < 8
        word[short] &= (np.uint64(1) << (left[short] * np.uint64(8))) - np.uint64(1)
        h[sel] = _fmix(h[sel] ^ word) + np.uint64(word_index)
        word_index += 1


def registers(hashes: np.ndarray, into: np.ndarray | None = None) -> np.ndarray:
    """The HLL registers of ``hashes`` (merged into ``into`` when given)."""
    import numpy as np

    reg = np.zeros(M, np.uint8) if into is None else into
    if len(hashes) == 0:
        return reg
    # Few fresh arrays (touching new memory is slow on some VMs): the register index is a
    # view (it is below 2**12), and rest's float bits give its bit length.
    idx = np.right_shift(hashes, np.uint64(_Q)).view(np.intp)
    rest = np.bitwise_and(hashes, np.uint64((1 << _Q) - 1)).astype(np.float64)  # exact
    bits = rest.view(np.uint64)
    np.right_shift(bits, np.uint64(52), out=bits)  # biased exponent: bit length + 1022; 0 for 0
    # rho = _Q + 1 - bit length, and _Q + 1 for rest == 0 (what frexp's exponent gives)
    np.subtract(np.uint64(_Q + 1023), bits, out=bits)
    np.minimum(bits, np.uint64(_Q + 1), out=bits)
    np.maximum.at(reg, idx, bits.astype(np.uint8))
    return reg


def estimate(reg: np.ndarray) -> float:
    """Ertl's improved estimator of the distinct count behind ``reg``."""
    import numpy as np

    c = np.bincount(reg, minlength=_Q + 2).astype(np.float64)
    if c[0] == M:
        return 0.0
    z = M * _tau(1.0 - c[_Q + 1] / M)
    for k in range(_Q, 0, -1):
        z = 0.5 * (z + c[k])
    z += M * _sigma(c[0] / M)
    return M * M / (2.0 * math.log(2.0)) / z


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        before = z
        z += x * y
        y += y
        if z == before:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        before = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == before:
            return z / 3.0
