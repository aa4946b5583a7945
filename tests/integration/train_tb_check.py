#!/usr/bin/python3
"""Check a TensorBoard event file written by diffcr-train: every TFRecord's length and data CRCs
(masked CRC32C, computed here independently), the first event's file_version, and that scalars
with the given tag exist. Usage: train_tb_check.py EVENTS_FILE TAG; prints the number of records."""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(buf, i):
    v, s = 0, 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << s
        s += 7
        if not b & 0x80:
            return v, i


def fields(buf):
    """(field, wire, value) of a protobuf message."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = varint(buf, i)
        elif w == 1:
            v, i = buf[i:i + 8], i + 8
        elif w == 5:
            v, i = buf[i:i + 4], i + 4
        elif w == 2:
            n, i = varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError("wire type %d" % w)
        yield f, w, v


def main():
    data = open(sys.argv[1], "rb").read()
    tag = sys.argv[2].encode()
    assert crc32c(b"123456789") == 0xE3069283
    pos, n, found, first = 0, 0, 0, True
    while pos < len(data):
        hdr = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", hdr)
        (lcrc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        assert lcrc == masked(hdr), "length CRC mismatch at record %d" % n
        payload = data[pos + 12:pos + 12 + length]
        (dcrc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        assert dcrc == masked(payload), "data CRC mismatch at record %d" % n
        ev = list(fields(payload))
        assert ev[0][0] == 1 and ev[0][1] == 1, "wall_time first"
        if first:
            assert (3, 2, b"brain.Event:2") in ev, "first record lacks file_version"
            first = False
        for f, w, v in ev:
            if f == 5:
                for sf, sw, sv in fields(v):
                    vals = dict((a, c) for a, b, c in fields(sv))
                    if vals.get(1) == tag:
                        (val,) = struct.unpack("<f", vals[2])
                        assert val == val, "NaN scalar"
                        found += 1
        pos += 16 + length
        n += 1
    assert found > 0, "no scalar tagged %s" % tag.decode()
    print(n, found)


if __name__ == "__main__":
    main()
