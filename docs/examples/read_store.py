#!/usr/bin/env python3
"""Read and check a BmadGuard store with nothing but the standard library (docs/store-format.md).

    python3 read_store.py STORE            print every event as one JSON line, like `bmadguard get`
    python3 read_store.py STORE --check    print {"events","segments","lastSeq","tornTailBytes"}

Exit 0 when the store is sound (a torn tail at the very end is not damage: it is not events yet),
1 with "STORE DAMAGED: <file> at byte <offset>: <what>" on stderr otherwise. Takes no lock.
"""
import json
import os
import re
import sys


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
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


_TRAILER = re.compile(rb',"crc":"([0-9a-f]{8})"\}\Z')
_SEGMENT = re.compile(r"segment-(\d{20})\.jsonl\Z")
_SEQ_START = re.compile(rb'\{"seq":\d+,')


def _trailer_misfits(trailer):
    # How many of the 18 trailer bytes do not fit ,"crc":" + 8 lowercase hex digits + "}
    bad = sum(1 for a, b in zip(trailer[:8], b',"crc":"') if a != b)
    bad += sum(1 for c in trailer[8:16] if c not in b"0123456789abcdef")
    return bad + (trailer[16] != ord('"')) + (trailer[17] != ord("}"))


def has_record_shape(line):
    # A complete line that was a whole record once: no NUL, and a well-formed trailer, or a trailer one byte off
    # with a {"seq":N, start and a body that is one complete JSON object. A torn write keeps its start, not its end.
    if b"\x00" in line or len(line) < 27:
        return False
    misfits = _trailer_misfits(line[-18:])
    if misfits == 0:
        return True
    if misfits > 1 or _SEQ_START.match(line) is None:
        return False
    try:
        json.loads(line[:-18] + b"}")
        return True
    except ValueError:
        return False


class Damaged(Exception):
    def __init__(self, path, offset, what):
        super().__init__(f"{path} at byte {offset}: {what}")


def checked(line):
    """The event (or header) JSON bytes of a newline-stripped line, or None when its trailer or CRC is wrong."""
    m = _TRAILER.search(line)
    if not line.startswith(b"{") or m is None or len(line) < 20:
        return None
    body = line[:-18]
    if crc32c(body) != int(m.group(1), 16):
        return None
    return body + b"}"


def decode_event(line):
    """(seq, event bytes) for a valid record line, else None."""
    raw = checked(line)
    if raw is None or line.startswith(b'{"segment":'):
        return None
    try:
        event = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    if not isinstance(event, dict) or not isinstance(event.get("seq"), int) or not isinstance(event.get("data"), dict):
        return None
    return event["seq"], raw


def read_store(store):
    """Yields (seq, event JSON bytes) in seq order; returns the number of torn-tail bytes at the end."""
    with open(os.path.join(store, "bmadguard.store.json"), "rb") as f:
        if json.load(f).get("format") != "bmadguard-store/1":
            raise Damaged(os.path.join(store, "bmadguard.store.json"), 0, "unknown store format")
    seg_dir = os.path.join(store, "segments")
    segments = sorted((int(m.group(1)), os.path.join(seg_dir, n))
                      for n in os.listdir(seg_dir) for m in [_SEGMENT.match(n)] if m)
    expect = 1
    for index, (first_seq, path) in enumerate(segments):
        last = index == len(segments) - 1
        with open(path, "rb") as f:
            data = f.read()
        if first_seq != expect:
            raise Damaged(path, 0, f"segment starts at seq {first_seq}, expected {expect}")
        end = data.find(b"\n")
        header = checked(data[:end]) if end >= 0 else None
        if header is None or json.loads(header)["segment"]["firstSeq"] != first_seq:
            raise Damaged(path, 0, "damaged or missing segment header")
        offset = end + 1
        while offset < len(data):
            end = data.find(b"\n", offset)
            record = decode_event(data[offset:end]) if end >= 0 else None
            if record is None:
                rest = data[offset:]
                # Only complete (newline-terminated) lines count as records when looking past the bad one;
                # a complete line with a record's shape was a record once (a changed byte, not a crash).
                lines = rest.split(b"\n")[:-1]
                if last and not any(decode_event(l) for l in lines[1:]) and not any(has_record_shape(l) for l in lines):
                    return len(rest)  # torn tail: an interrupted append, not events
                raise Damaged(path, offset, "a record's checksum or format does not hold")
            if record[0] != expect:
                raise Damaged(path, offset, f"expected seq {expect} but found {record[0]}")
            yield record
            expect += 1
            offset = end + 1
    return 0


def main(argv):
    sys.setrecursionlimit(10000)  # data may nest up to 1000 levels (a store's largest maxDepth)
    store, check = argv[1], "--check" in argv[2:]
    events, reader = 0, read_store(store)
    out = sys.stdout.buffer
    try:
        while True:
            try:
                seq, raw = next(reader)
            except StopIteration as stop:
                torn = stop.value or 0
                break
            events += 1
            if not check:
                out.write(raw + b"\n")
    except Damaged as e:
        out.flush()
        print(f"STORE DAMAGED: {e}", file=sys.stderr)
        return 1
    if check:
        segments = sum(1 for n in os.listdir(os.path.join(store, "segments")) if _SEGMENT.match(n))
        out.write(json.dumps({"events": events, "segments": segments, "lastSeq": events, "tornTailBytes": torn}).encode() + b"\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
