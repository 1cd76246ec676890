"""The Doctor: the one object the Trainer talks to. It measures the signals for each record,
runs the detectors on each record, writes their events, and keeps the snapshot a non-finite
step rolls back to. Its state (detectors, throttles, rollbacks) travels in checkpoints, so a
resumed run writes the same events as one that never stopped."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganforge.config import TrainConfig
from ganforge.data import ImageDataset, ImageFolder, PointSet
from ganforge.models import ModelFamily
from ganforge.training.doctor.causes import likely_causes
from ganforge.training.doctor.detectors import build_detectors
from ganforge.training.doctor.events import Event, EventLog
from ganforge.training.doctor.rollback import Rollback
from ganforge.training.doctor.schema import check_doctor_state
from ganforge.training.doctor.signals import DiversityProbe, ModeProbe, weight_norm


class Doctor:
    """Signals, detectors, events.jsonl, and the snapshot a non-finite step rolls back to.

    The Trainer calls `signals` before each record, `observe` with each record, `watch` with
    each phase's loss, `check` on each step that writes something, then `snapshot`.
    """

    def __init__(
        self,
        config: TrainConfig,
        family: ModelFamily,
        dataset: ImageDataset | ImageFolder | PointSet,
        events_path: Path | None,
        device: torch.device,
    ):
        self.config = config
        self.events = EventLog(events_path)
        self.probe = DiversityProbe(family, dataset, config.seed, device)
        self.modes = None  # point data with modes: the count of modes G covers
        if isinstance(dataset, PointSet) and dataset.modes is not None:
            self.modes = ModeProbe(family, dataset, device)
        # at initialisation: a resumed run rebuilds the same initial weights before loading
        initial = {
            f"weight_norm_{n}": float(weight_norm(net)) for n, net in family.networks.items()
        }
        self.detectors = build_detectors(config, family.sampler, initial, family.kind)
        self.recovery = Rollback(config, family, self.events)
        self._throttle = {d.name: {"firing": False, "quiet": 0} for d in self.detectors}
        self._causes: dict[str, list] = {}  # event -> the likely causes in this run's options

    # ---- signals and detectors -------------------------------------------------------------
    def signals(self, networks: nn.ModuleDict, sampling_network: nn.Module) -> dict:
        """Weight norms and diversity (unsynced tensors) for the record about to be written."""
        found: dict = {f"weight_norm_{name}": weight_norm(net) for name, net in networks.items()}
        found["diversity"] = self.probe.diversity(sampling_network)
        found["diversity_real"] = self.probe.real
        if self.modes is not None:
            found.update(self.modes.measure(sampling_network))
        return found

    @property
    def firing(self) -> list[str]:
        """The events whose problem shows in the latest records."""
        events = [d.event for d in self.detectors if self._throttle[d.name]["firing"]]
        return list(dict.fromkeys(events))

    def observe(self, record: dict) -> list[Event]:
        """Run the detectors on a complete record; write and return the events it raises. A
        detector's event is written when it starts firing, then every --doctor-repeat records
        (of the kind it reads) while it keeps firing."""
        events = []
        for detector in self.detectors:
            if not detector.reads(record):
                continue
            evidence = detector.examine(record)
            throttle = self._throttle[detector.name]
            if evidence is None:
                throttle.update(firing=False, quiet=0)
                continue
            if throttle["firing"] and throttle["quiet"] + 1 < self.config.doctor_repeat:
                throttle["quiet"] += 1
                continue
            throttle.update(firing=True, quiet=0)
            events.append(self._event(record["step"], detector, evidence))
        for event in events:
            self.events.write(event)
        return events

    def _event(self, step: int, detector, evidence: dict) -> Event:
        """The event, naming the run's option that likely caused it (causes.py) with its fix
        first among the remedies."""
        remedies = detector.remedies()
        if detector.event not in self._causes:  # the options do not change during a run
            self._causes[detector.event] = likely_causes(self.config, (detector.event,))
        causes = self._causes[detector.event]
        if causes:
            evidence = {**evidence, "likely_cause": causes[0].reason(self.config)}
            fixes = [cause.flags(self.config) for cause in causes]
            remedies = list(dict.fromkeys(fixes + remedies))
        return Event(step, detector.event, evidence, remedies)

    # ---- non-finite steps (rollback.py) ------------------------------------------------------
    @property
    def rollbacks(self) -> int:
        return self.recovery.rollbacks

    @rollbacks.setter
    def rollbacks(self, count: int) -> None:
        self.recovery.rollbacks = count

    @property
    def has_snapshot(self) -> bool:
        return self.recovery.has_snapshot

    def watch(self, phase: str, loss: torch.Tensor, step: int) -> None:
        self.recovery.watch(phase, loss, step)

    def check(
        self,
        networks: nn.ModuleDict,
        minimum: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> str | None:
        return self.recovery.check(networks, minimum)

    def snapshot(self, tensors: dict[str, torch.Tensor], metadata: dict) -> None:
        self.recovery.snapshot(tensors, metadata)

    def roll_back(self, problem: str, step: int) -> tuple[dict[str, torch.Tensor], dict]:
        return self.recovery.roll_back(problem, step)

    # ---- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "rollbacks": self.rollbacks,
            "detectors": {
                d.name: {"state": d.state, **self._throttle[d.name]} for d in self.detectors
            },
        }

    def load_state_dict(self, saved: dict | None) -> None:
        """Continue from a checkpoint's doctor state (None: start afresh). All of it is checked
        (schema.py) before any is loaded. A detector the state lacks starts afresh."""
        if saved is not None:
            check_doctor_state(saved, self.detectors)
        self.recovery.rollbacks = saved["rollbacks"] if saved is not None else 0
        entries = saved["detectors"] if saved is not None else {}
        for detector in self.detectors:
            entry = entries.get(detector.name, {"state": detector.initial_state()})
            detector.state = copy.deepcopy(entry["state"])
            self._throttle[detector.name] = {
                "firing": entry.get("firing", False),
                "quiet": entry.get("quiet", 0),
            }
