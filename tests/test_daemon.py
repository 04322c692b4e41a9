"""The daemon's own work (bridge/daemon.py): wiring a file's charge points to the store, their devices
and the central system, each on its own connection; the state directory; a clean stop on SIGTERM,
SIGINT or `stop()`, also one asked for before it ran; and what an unusable state directory or an
unreachable device does.

Real: the daemon in this process (tests/conftest.py's `running`, or `Daemon.run` as its own task
where the test stops it), the strict central system of tests/csms.py, the store in tmp_path, and
the simulated charger driven through its public methods. Systemd's side (READY, the watchdog,
health) is tested against a notify socket in test_systemd; a bounded stop with a central system
that no longer answers in test_daemon_stop; the `ocpp-bridge run` process in test_cli.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.chargers.composed import MeteredCharger
from adapters.chargers.simulated import SimulatedCharger
from adapters.transports.pool import Transports
from bridge.config import Config, parse_config
from bridge.daemon import Daemon
from bridge.devices import build_charger, device_state_file
from bridge.sd_notify import Notifier
from bridge.store import FILENAME
from tests.conftest import FAST_OCPP, make_config, running
from tests.csms import StrictCentralSystem
from tests.helpers.flow import sim_of
from tests.helpers.parts import until
from tests.processes import dead_port, free_port

ROOT = Path(__file__).resolve().parent.parent


class RecordingNotifier(Notifier):
    """systemd's notify protocol as the daemon speaks it, kept in a list instead of sent."""

    def __init__(self) -> None:
        super().__init__(env={})
        self.sent: list[str] = []
        self.closed = False

    def notify(self, *fields: str) -> bool:
        self.sent.extend(fields)
        return True

    def close(self) -> None:
        self.closed = True
        super().close()


def nobody_listening() -> str:
    """A central system URL where nothing listens: the daemon runs offline."""
    return f"ws://127.0.0.1:{dead_port()}/ocpp"


def config_of(tmp_path: Path, *charge_points: dict[str, Any]) -> Config:
    """A file with these charge points (each a mapping as in the YAML), read by the real loader."""
    # No local API: its default port (8080) is one port for every test process running beside this one.
    doc = {
        "state_dir": str(tmp_path / "state"),
        "api": {"listen": None},
        "charge_points": list(charge_points),
    }
    return parse_config(yaml.safe_dump(doc), "test.yaml")


def charge_point(cp_id: str, csms_url: str, *chargers: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": cp_id,
        "csms_url": csms_url,
        "reconnect": {"initial_s": 0.2, "max_s": 1.0},
        "ocpp": FAST_OCPP,
        "connectors": [{"id": n, "charger": c} for n, c in enumerate(chargers, start=1)],
    }


def tasks_of_ours() -> list[asyncio.Task[Any]]:
    """The tasks still running code of bridge/ or adapters/ (a stopped daemon leaves none)."""
    ours = (str(ROOT / "bridge"), str(ROOT / "adapters"))

    def where(task: asyncio.Task[Any]) -> str:
        code = getattr(task.get_coro(), "cr_code", None)
        return code.co_filename if code is not None else ""

    return [t for t in asyncio.all_tasks() if not t.done() and where(t).startswith(ours)]


def wal_file(state: Path) -> Path:
    """SQLite's write-ahead log of the store: there while a connection is open, removed (checkpointed
    into the database) when the last one closes cleanly."""
    return state / f"{FILENAME}-wal"


async def booted(cs: StrictCentralSystem, cp_id: str, connectors: int = 1) -> None:
    """`cp_id` has reported the status of its last connector: it is booted and serving."""
    await cs.wait_for_call(cp_id, "StatusNotification", lambda p: p["connectorId"] == connectors)


async def started(cs: StrictCentralSystem, daemon: Daemon, cp_id: str, tag: str) -> None:
    """Plug and tap on `cp_id`'s connector 1, until the central system has its StartTransaction."""
    sim = sim_of(daemon, cp_id)
    sim.plug()
    sim.tap(tag)
    await cs.wait_for_call(cp_id, "StartTransaction", lambda p: p["idTag"] == tag)


# -- wiring ------------------------------------------------------------------------------------------


async def test_each_charge_point_of_the_file_has_its_own_connection_and_boots(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, cp_ids=("CP-1", "CP-2"), connectors=2)
    async with running(config) as daemon:
        await booted(csms, "CP-1", 2)
        await booted(csms, "CP-2", 2)
        assert sorted(link.cp_id for link in csms.links) == ["CP-1", "CP-2"]
        for cp_id in ("CP-1", "CP-2"):
            assert len(csms.calls(cp_id, "BootNotification")) == 1
            reported = {(s["connectorId"], s["status"]) for s in csms.calls(cp_id, "StatusNotification")}
            assert reported == {(0, "Available"), (1, "Available"), (2, "Available")}
        assert daemon.status_line() == "2 charge points: 2 connected, 2 accepted; 0 transactions running"
        assert daemon.health() == []


async def test_a_device_that_cannot_be_reached_faults_its_connector_and_nothing_else(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    gone = {"type": "goe", "url": f"http://127.0.0.1:{free_port()}", "timeout_s": 0.3}  # nobody there
    config = config_of(
        tmp_path,
        charge_point("CP-1", csms.url, {"type": "simulated"}),
        charge_point("CP-2", csms.url, gone, {"type": "simulated"}),
    )
    async with running(config) as daemon:
        await booted(csms, "CP-1")
        await booted(csms, "CP-2", 2)
        faulted = await csms.wait_for_call(
            "CP-2", "StatusNotification", lambda p: p["connectorId"] == 1 and p["status"] == "Faulted"
        )
        assert faulted["vendorErrorCode"] == "DeviceUnreachable"
        beside = [s["status"] for s in csms.calls("CP-2", "StatusNotification") if s["connectorId"] == 2]
        assert beside == ["Available"]
        assert [s["status"] for s in csms.calls("CP-1", "StatusNotification")] == ["Available", "Available"]
        # A device is not the daemon's health: restarting the service would not bring it back.
        assert daemon.status_line() == "2 charge points: 2 connected, 2 accepted; 0 transactions running"
        assert daemon.health() == []


def test_a_connector_with_a_meter_of_record_gets_the_two_composed(tmp_path: Path) -> None:
    meter = {"type": "sdm630", "modbus": f"tcp://127.0.0.1:{free_port()}", "device_id": 1}
    config = make_config(nobody_listening(), tmp_path, connectors=2, meter=meter)
    with_meter = config.charge_points[0].connectors[0]
    without = make_config(nobody_listening(), tmp_path).charge_points[0].connectors[0]
    # Nothing is opened by building: the meter's bus is connected by its first request.
    assert isinstance(build_charger(with_meter, Transports()), MeteredCharger)
    assert isinstance(build_charger(without, Transports()), SimulatedCharger)


async def test_local_transaction_ids_are_one_sequence_across_charge_points_and_restarts(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, cp_ids=("CP-1", "CP-2"))
    async with running(config) as daemon:
        await booted(csms, "CP-1")
        await booted(csms, "CP-2")
        await started(csms, daemon, "CP-1", "ONE")
        await started(csms, daemon, "CP-2", "TWO")
        first = [  # read while they run: an ended transaction's row goes once its messages are answered
            row.id
            for cp_id in ("CP-1", "CP-2")
            for row in await daemon.store.run(daemon.store.transactions, cp_id)
        ]
        for cp_id in ("CP-1", "CP-2"):  # ended, so that the next run does not resume them
            sim_of(daemon, cp_id).unplug()
            await csms.wait_for_call(cp_id, "StopTransaction")
    assert len(first) == 2 and len(set(first)) == 2
    reported = len([s for s in csms.calls("CP-2", "StatusNotification") if s["connectorId"] == 1])

    async with running(config) as daemon:
        await csms.wait_for_call("CP-2", "BootNotification", count=2)
        await csms.wait_for_call(
            "CP-2", "StatusNotification", lambda p: p["connectorId"] == 1, count=reported + 1
        )
        await started(csms, daemon, "CP-2", "THREE")
        rows = await daemon.store.run(daemon.store.transactions, "CP-2")
        [third] = [row.id for row in rows if row.id_tag == "THREE"]
    assert third > max(first)


# -- the state directory -----------------------------------------------------------------------------


def test_a_device_state_file_is_named_safely_after_its_charge_point_and_connector() -> None:
    state = Path("/var/lib/ocpp-bridge")
    assert device_state_file(state, "CP-1", 2) == state / "devices" / "CP-1.2.json"
    # Whatever the id holds stays one file name in devices/.
    assert device_state_file(state, "../a/b:c%", 1) == state / "devices" / "..%2Fa%2Fb%3Ac%25.1.json"


async def test_the_state_directory_is_made_and_holds_the_store_and_each_devices_state(tmp_path: Path) -> None:
    state = tmp_path / "var" / "lib" / "bridge"  # none of it there yet
    doc = {
        "state_dir": str(state),
        "api": {"listen": None},
        "charge_points": [
            charge_point(cp_id, nobody_listening(), {"type": "simulated"}, {"type": "simulated"})
            for cp_id in ("Garage:1", "CP-2")
        ],
    }
    config = parse_config(yaml.safe_dump(doc), "test.yaml")
    async with running(config) as daemon:
        assert (state / FILENAME).is_file()
        assert daemon.status_line() == "2 charge points: 0 connected, 0 accepted; 0 transactions running"
        sim_of(daemon, "Garage:1", 2).plug()  # something for the simulator to keep across a restart
        # A box keeps a file once it has started (one stopped before its start leaves none alone).
        every_device = [rt for cp in daemon.charge_points.values() for rt in cp.connectors.values()]
        await until(lambda: all(rt.started for rt in every_device), "every device started", timeout_s=5)
    files = {p.relative_to(state) for p in (state / "devices").iterdir()}
    assert files == {
        device_state_file(state, cp_id, n).relative_to(state)
        for cp_id in ("Garage:1", "CP-2")
        for n in (1, 2)
    }
    assert {p.name for p in (state / "devices").iterdir()} >= {"Garage%3A1.1.json", "CP-2.2.json"}

    async with running(config) as daemon:
        restarted = daemon.charge_points["Garage:1"].connectors
        await until(lambda: all(rt.started for rt in restarted.values()), "its boxes started", timeout_s=5)
        assert sim_of(daemon, "Garage:1", 2).state().plugged
        assert not sim_of(daemon, "Garage:1", 1).state().plugged


async def test_a_state_directory_that_cannot_be_made_fails_the_start_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    (tmp_path / "state").write_text("a file where the directory should be")
    config = make_config(nobody_listening(), tmp_path)
    with pytest.raises(OSError):
        Daemon(config)
    assert tasks_of_ours() == []
    assert (tmp_path / "state").read_text() == "a file where the directory should be"


# -- stopping ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_a_signal_stops_the_daemon_cleanly(
    csms: StrictCentralSystem, tmp_path: Path, sig: signal.Signals
) -> None:
    config = make_config(csms.url, tmp_path, cp_ids=("CP-1", "CP-2"))
    notifier = RecordingNotifier()
    daemon = Daemon(config, notifier=notifier)
    handler_before = signal.getsignal(sig)
    ready = asyncio.Event()
    run = asyncio.create_task(daemon.run(on_ready=ready.set))
    try:
        await asyncio.wait_for(ready.wait(), 10)
        await booted(csms, "CP-1")
        await booted(csms, "CP-2")
        assert tasks_of_ours() != []  # the check at the end sees the daemon's tasks
        # Only with the daemon's handler in place: the default action would end the test process.
        assert signal.getsignal(sig) is not handler_before, "the daemon handles no signal"
        os.kill(os.getpid(), sig)
        await asyncio.wait_for(run, 10)  # returns: a signal is a stop, not an error
    finally:
        daemon.stop()
        await asyncio.wait_for(run, 10)
    assert notifier.sent.index("READY=1") < notifier.sent.index("STOPPING=1")
    assert notifier.closed
    assert all(link.closed for link in csms.links) and len(csms.links) == 2  # none came back
    assert not wal_file(tmp_path / "state").exists()  # the store was closed
    assert all(device_state_file(tmp_path / "state", cp, 1).is_file() for cp in ("CP-1", "CP-2"))
    assert tasks_of_ours() == []


async def test_a_stop_asked_for_before_the_daemon_runs_is_a_clean_one(tmp_path: Path) -> None:
    notifier = RecordingNotifier()
    daemon = Daemon(make_config(nobody_listening(), tmp_path), notifier=notifier)
    daemon.stop()
    await asyncio.wait_for(daemon.run(), 10)
    assert "STOPPING=1" in notifier.sent and notifier.closed
    assert not wal_file(tmp_path / "state").exists()
    assert tasks_of_ours() == []


async def test_the_local_api_is_served_while_running_and_closed_by_the_stop(
    csms: StrictCentralSystem, tmp_path: Path
) -> None:
    config = make_config(csms.url, tmp_path, api=f"127.0.0.1:{free_port()}")
    async with running(config) as daemon:
        assert daemon.api_address is not None
        host, port = daemon.api_address
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        await writer.wait_closed()
    with pytest.raises(OSError):
        await asyncio.open_connection(host, port)
