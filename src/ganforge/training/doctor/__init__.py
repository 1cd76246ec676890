"""The GAN doctor (docs/reference/diagnosis): cheap signals in every record (signals.py), detectors
that name what is going wrong and what to try (detectors.py), their events in
RUN/events.jsonl (events.py), recovery from a non-finite step (rollback.py), and the schema of
the state it saves in checkpoints (schema.py); doctor.py puts them together for the Trainer."""

from ganforge.training.doctor.detectors import (
    ClassCollapse,
    Detector,
    DOverpowering,
    Exploding,
    GOverpowering,
    ModeCollapse,
    Oscillation,
    Stalled,
    Vanishing,
    build_detectors,
)
from ganforge.training.doctor.doctor import Doctor
from ganforge.training.doctor.events import Event, EventLog, truncate_events
from ganforge.training.doctor.schema import check_doctor_state
from ganforge.training.doctor.signals import DiversityProbe, gradient_norms, weight_norm

__all__ = [
    "ClassCollapse",
    "DOverpowering",
    "Detector",
    "DiversityProbe",
    "Doctor",
    "Event",
    "EventLog",
    "Exploding",
    "GOverpowering",
    "ModeCollapse",
    "Oscillation",
    "Stalled",
    "Vanishing",
    "build_detectors",
    "check_doctor_state",
    "gradient_norms",
    "truncate_events",
    "weight_norm",
]
