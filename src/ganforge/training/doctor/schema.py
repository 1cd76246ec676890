"""The schema of the doctor's state in a checkpoint (Doctor.state_dict), checked here and
nowhere else:

    {"rollbacks": count,
     "detectors": {name: {"state": {key: count or [finite numbers]},
                          "firing": true/false, "quiet": count}}}

A checkpoint read on its own (training/checkpoint.py) is checked without knowing the
detectors: each state holds numbers or lists of numbers. The Doctor that loads it checks it
again with its detectors: their names, and only each one's own counters and windows. A
malformed state is a GanforgeError naming the field, never a TypeError some records later."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from ganforge.checkpoint_file import json_number, whole_number
from ganforge.errors import GanforgeError, brief

COUNT = "a whole number >= 0"
ENTRY_FIELDS = {"state", "firing", "quiet"}


class DetectorSchema(Protocol):
    """What the schema asks of a detector (detectors.Detector)."""

    name: str
    counters: tuple[str, ...]

    def is_window(self, key: str) -> bool: ...


def check_doctor_state(saved: object, detectors: Iterable[DetectorSchema] | None = None) -> None:
    """Refuse a saved doctor state, naming its first wrong field (`doctor.rollbacks must be
    ...`); with `detectors`, also a detector they do not have or a key its state cannot hold."""
    ok = isinstance(saved, dict) and set(saved) == {"rollbacks", "detectors"}
    _require(ok, "doctor", "an object with rollbacks, detectors", saved)
    _require(whole_number(saved["rollbacks"]), "doctor.rollbacks", COUNT, saved["rollbacks"])
    entries = saved["detectors"]
    _require(isinstance(entries, dict), "doctor.detectors", "an object", entries)
    by_name = None if detectors is None else {detector.name: detector for detector in detectors}
    for name, entry in entries.items():
        if by_name is not None:
            _require(name in by_name, "doctor.detectors", f"keyed by {', '.join(by_name)}", name)
        where = f"doctor.detectors.{name}"
        ok = isinstance(entry, dict) and set(entry) == ENTRY_FIELDS
        _require(ok, where, "an object with state, firing, quiet", entry)
        firing = entry["firing"]
        _require(isinstance(firing, bool), f"{where}.firing", "true or false", firing)
        _require(whole_number(entry["quiet"]), f"{where}.quiet", COUNT, entry["quiet"])
        detector = None if by_name is None else by_name[name]
        _check_detector_state(entry["state"], f"{where}.state", detector)


def _check_detector_state(state: object, where: str, detector: DetectorSchema | None) -> None:
    """A detector's state: its counters and windows (any key of numbers or lists of numbers
    when the detector is not known)."""
    _require(isinstance(state, dict), where, "an object", state)
    for key, value in state.items():
        at = f"{where}.{key}"
        if detector is None:
            ok = json_number(value) or (isinstance(value, list) and all(map(json_number, value)))
            _require(ok, at, "a number or a list of numbers", value)
        elif key in detector.counters:
            _require(whole_number(value), at, COUNT, value)
        elif isinstance(key, str) and detector.is_window(key):
            ok = isinstance(value, list) and all(json_number(v) for v in value)
            _require(ok, at, "a list of finite numbers", value)
        else:
            raise GanforgeError(f"{where} has a field no {detector.name} state has: {brief(key)}")


def _require(ok: bool, field: str, expected: str, value: object) -> None:
    if not ok:
        raise GanforgeError(f"{field} must be {expected}, got {brief(value)}")
