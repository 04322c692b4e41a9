"""One connector at run time: its core, the coordinator of its device, its effect runner."""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.base import Charger, ChargerReading
from bridge.config import ConnectorConfig
from bridge.core.connector import Connector, Transaction
from bridge.core.meter_values import IntervalAverage
from bridge.flag import Flag
from bridge.runtime.coordinator import DeviceCoordinator
from bridge.runtime.effects import EffectRunner


@dataclass
class ConnectorRuntime:
    core: Connector
    device: DeviceCoordinator
    effects: EffectRunner
    settings: ConnectorConfig | None = None  # poll interval, fault threshold, voltage; defaults without
    aligned: IntervalAverage = field(default_factory=IntervalAverage)  # the clock-aligned interval's means
    transaction_over: Flag = field(default_factory=Flag)  # wakes the meter sampler
    resume_pending: bool = False  # a transaction resumed after a restart: energy on at the first reading

    def still_running(self, tx: Transaction) -> bool:
        current = self.core.transaction
        return current is not None and current.local_id == tx.local_id

    # Read-only views of the device, for those who only look.
    @property
    def charger(self) -> Charger:
        return self.device.charger

    @property
    def reading(self) -> ChargerReading | None:
        return self.device.reading

    @property
    def started(self) -> bool:
        return self.device.started

    @property
    def failed_reads(self) -> int:
        return self.device.failed_reads
