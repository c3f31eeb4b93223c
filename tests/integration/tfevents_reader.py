"""An independent reader of TensorBoard event files, written from the formats'
specifications with the standard library only (no protobuf, no TensorFlow):

- TFRecord framing: uint64 length (little-endian), uint32 masked CRC32C of the
  length bytes, the data, uint32 masked CRC32C of the data; mask(c) =
  ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2^32).
- CRC32C: Castagnoli polynomial, reflected 0x82F63B78, initial and final
  value 0xFFFFFFFF.
- Protocol buffers wire format: varint keys (field << 3 | wire type); wire
  types 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
- Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
  summary = 5 (Summary). Summary: value = 1 (repeated Value). Value: tag = 1
  (string), simple_value = 2 (float).

read_events(path) returns a list of dicts; every CRC is checked (a mismatch
raises CorruptFile).
"""
import struct


class CorruptFile(Exception):
    pass


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def read_records(data):
    """The payloads of the TFRecords in `data`, each checked against both CRCs."""
    records, at = [], 0
    while at < len(data):
        if len(data) - at < 12:
            raise CorruptFile(f"truncated record header at byte {at}")
        length_bytes = data[at:at + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if length_crc != masked_crc32c(length_bytes):
            raise CorruptFile(f"bad length CRC at byte {at}")
        end = at + 12 + length
        if end + 4 > len(data):
            raise CorruptFile(f"truncated record at byte {at}")
        payload = data[at + 12:end]
        (data_crc,) = struct.unpack("<I", data[end:end + 4])
        if data_crc != masked_crc32c(payload):
            raise CorruptFile(f"bad data CRC at byte {at}")
        records.append(payload)
        at = end + 4
    return records


def _varint(buf, at):
    value, shift = 0, 0
    while True:
        if at >= len(buf):
            raise CorruptFile("truncated varint")
        b = buf[at]
        at += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, at
        shift += 7


def parse_message(buf):
    """{field number: [values]}; values are ints, bytes, or raw 4/8-byte strings."""
    fields, at = {}, 0
    while at < len(buf):
        key, at = _varint(buf, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(buf, at)
        elif wire == 1:
            value, at = buf[at:at + 8], at + 8
        elif wire == 2:
            n, at = _varint(buf, at)
            value, at = buf[at:at + n], at + n
        elif wire == 5:
            value, at = buf[at:at + 4], at + 4
        else:
            raise CorruptFile(f"unsupported wire type {wire} (field {field})")
        if at > len(buf):
            raise CorruptFile(f"field {field} runs past the message")
        fields.setdefault(field, []).append(value)
    return fields


def decode_event(payload):
    f = parse_message(payload)
    event = {"wall_time": struct.unpack("<d", f[1][0])[0] if 1 in f else 0.0,
             "step": f[2][0] if 2 in f else 0}
    if 3 in f:
        event["file_version"] = f[3][0].decode("utf-8")
    if 5 in f:
        values = []
        for v in parse_message(f[5][0]).get(1, []):
            vf = parse_message(v)
            tag = vf[1][0].decode("utf-8") if 1 in vf else ""
            simple = struct.unpack("<f", vf[2][0])[0] if 2 in vf else None
            values.append((tag, simple))
        event["values"] = values
    return event


def read_events(path):
    with open(path, "rb") as f:
        return [decode_event(r) for r in read_records(f.read())]


def scalars(events):
    """{tag: [(step, value), ...]} from decoded events."""
    out = {}
    for e in events:
        for tag, value in e.get("values", []):
            out.setdefault(tag, []).append((e["step"], value))
    return out
