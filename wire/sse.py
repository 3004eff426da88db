"""Incremental Server-Sent Events framing.

Network reads cut a stream anywhere, so :class:`EventSplitter` keeps only the
incomplete tail and hands out whole events as the raw bytes received
(terminator included), which lets pass-through translators forward them
without re-encoding. Events end at a blank line: ``\\n\\n`` or ``\\r\\n\\r\\n``
(a mix of the two is tolerated). A single event larger than ``limit`` is a
broken or hostile upstream, not a reason to grow memory: the splitter flags
``overflow`` and the translator turns it into an error.
"""

from __future__ import annotations

MAX_EVENT_BYTES = 1 << 20  # 1 MiB; real chunks are well under 64 KiB
DONE_EVENT = b"data: [DONE]\n\n"

_LF_LF = b"\n\n"
_LF_CRLF = b"\n\r\n"  # the tail of "\r\n\r\n"


class EventSplitter:
    __slots__ = ("_buf", "_scan_from", "limit", "overflow")

    def __init__(self, limit: int = MAX_EVENT_BYTES) -> None:
        self._buf = bytearray()
        self._scan_from = 0  # bytes before this offset hold no terminator
        self.limit = limit
        self.overflow = False

    def feed(self, data: bytes) -> list[bytes]:
        """Complete events found after appending ``data``."""
        buf = self._buf
        # Common case: the previous read ended on an event boundary, so the
        # new read is split in place and only its unterminated tail is copied.
        source: bytes | bytearray = data
        scan_from = 0
        if buf:
            buf += data
            source = buf
            scan_from = self._scan_from
        events: list[bytes] = []
        start = 0
        lf = source.find(_LF_LF, scan_from)
        crlf = source.find(_LF_CRLF, scan_from)
        # Each terminator is searched for monotonically and at most once per
        # position, so a large read holding many events is split in linear time.
        while lf != -1 or crlf != -1:
            end = lf + 2 if crlf == -1 or (lf != -1 and lf < crlf) else crlf + 3
            if end - start > self.limit:
                self.overflow = True
                break
            events.append(bytes(source[start:end]))
            start = end
            if lf != -1 and lf < start:
                lf = source.find(_LF_LF, start)
            if crlf != -1 and crlf < start:
                crlf = source.find(_LF_CRLF, start)
        if source is buf:
            del buf[:start]
        elif start < len(data):
            buf += data[start:]
        if len(buf) > self.limit:
            self.overflow = True
        if self.overflow:
            buf.clear()
        # A terminator may straddle this read and the next one.
        self._scan_from = max(0, len(buf) - 2)
        return events

    def take_tail(self) -> bytes:
        """The unterminated remainder, for a stream that ended without a blank line."""
        tail = bytes(self._buf)
        self._buf.clear()
        self._scan_from = 0
        return tail


def event_fields(raw: bytes) -> tuple[str | None, bytes | None, bool]:
    """(event name, data, has comment) of one raw event.

    Several ``data:`` lines are joined with newlines as the SSE specification
    says; ``data`` is None when the event has no data line at all.
    """
    # Nearly every event is one "data: ...\n\n" line.
    if raw.startswith(b"data: ") and raw.find(b"\n") == len(raw) - 2:
        return None, raw[6:-2], False
    name: str | None = None
    data: bytes | None = None
    comment = False
    for line in raw.splitlines():
        if not line:
            continue
        if line.startswith(b"data:"):
            value = line[6:] if line[5:6] == b" " else line[5:]
            data = value if data is None else data + b"\n" + value
        elif line[0] == 0x3A:  # ":" starts a comment (keep-alive)
            comment = True
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return name, data, comment
