"""JSON-lines records of a run folder (metrics.jsonl, events.jsonl), read without the training
code. A line torn by a crash or garbled on disk is left out, never the whole file."""

from __future__ import annotations

import json
from pathlib import Path

from ganforge.checkpoint_file import MAX_COUNT
from ganforge.errors import GanforgeError


def read_metrics_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GanforgeError(f"cannot read '{path}': {exc.strerror or exc}") from None


def record_lines(data: bytes) -> list[bytes]:
    """The non-blank lines of a metrics.jsonl file, as bytes: a file damaged on disk may hold
    bytes that are not UTF-8, and such a line is dropped like a torn one, not the whole file."""
    return [line for line in data.split(b"\n") if line.strip()]


def parse_record(line: str | bytes) -> dict | None:
    """One metrics.jsonl line, or None for a line torn by a crash mid-write or garbled on disk
    (not UTF-8, not JSON, not an object with a whole-number `step`)."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        record = json.loads(text)
    except (ValueError, RecursionError):  # bad UTF-8 or JSON, a 5,000-digit number, [[[[...
        return None
    if not isinstance(record, dict):
        return None
    step = record.get("step")
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step <= MAX_COUNT:
        return None
    return record


def read_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl file that parse, in order (none if there is no file)."""
    if not path.is_file():
        return []
    records = map(parse_record, record_lines(read_metrics_file(path)))
    return [record for record in records if record is not None]
