"""A VCDIFF (RFC 3284) encoder: the delta format Ably sends for `params.delta = 'vcdiff'`.

One window whose source segment is the whole previous payload, coded with the default code
table's two size-explicit instructions: ADD (index 1) for new bytes and COPY in VCD_SELF mode
(index 19) for runs found in the source. Matches are found greedily through an index of the
source's `_BLOCK`-byte blocks. Sans-I/O: bytes in, bytes out.
"""

from __future__ import annotations

__all__ = ["encode"]

_MAGIC = b"\xd6\xc3\xc4\x00"
_VCD_SOURCE = 0x01
_ADD = 1  # default code table: ADD, size in the instruction stream
_COPY_SELF = 19  # default code table: COPY mode 0 (VCD_SELF), size in the instruction stream
_BLOCK = 4
# Candidates looked at per block, so a repetitive source cannot make matching quadratic.
_MAX_CANDIDATES = 8


def _varint(value: int) -> bytes:
    """RFC 3284 section 2: base 128, most significant digit first, high bit on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _index(source: bytes) -> dict[bytes, list[int]]:
    blocks: dict[bytes, list[int]] = {}
    for position in range(len(source) - _BLOCK + 1):
        found = blocks.setdefault(source[position : position + _BLOCK], [])
        if len(found) < _MAX_CANDIDATES:
            found.append(position)
    return blocks


def encode(source: bytes, target: bytes) -> bytes:
    """The VCDIFF delta that turns `source` into `target`."""
    blocks = _index(source)
    data = bytearray()
    instructions = bytearray()
    addresses = bytearray()
    pending = bytearray()

    def flush_add() -> None:
        if pending:
            instructions.append(_ADD)
            instructions.extend(_varint(len(pending)))
            data.extend(pending)
            pending.clear()

    position = 0
    while position < len(target):
        best_length, best_at = 0, 0
        for candidate in blocks.get(target[position : position + _BLOCK], ()):
            length = 0
            limit = min(len(source) - candidate, len(target) - position)
            while length < limit and source[candidate + length] == target[position + length]:
                length += 1
            if length > best_length:
                best_length, best_at = length, candidate
        if best_length >= _BLOCK:
            flush_add()
            instructions.append(_COPY_SELF)
            instructions += _varint(best_length)
            addresses += _varint(best_at)
            position += best_length
        else:
            pending.append(target[position])
            position += 1
    flush_add()

    delta = bytearray()
    delta += _varint(len(target))
    delta.append(0)  # Delta_Indicator: no secondary compression
    delta += _varint(len(data))
    delta += _varint(len(instructions))
    delta += _varint(len(addresses))
    delta += data + instructions + addresses

    window = bytearray([_VCD_SOURCE])
    window += _varint(len(source))
    window += _varint(0)  # the source segment starts at the beginning of the source
    window += _varint(len(delta))
    window += delta
    return _MAGIC + b"\x00" + bytes(window)  # Hdr_Indicator 0: no secondary compressor, no table
