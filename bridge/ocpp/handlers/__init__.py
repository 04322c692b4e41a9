"""What the charge point answers to the central system's calls, one module per feature profile.

- `core.py`: Core (configuration, remote start and stop, reset, unlock, availability, cache, data);
- `smart_charging.py`: SmartCharging (profiles and the composite schedule);
- `remote_trigger.py`: RemoteTrigger (TriggerMessage);
- `firmware.py`: FirmwareManagement (GetDiagnostics, UpdateFirmware);
- `local_list.py`: LocalAuthListManagement (SendLocalList, GetLocalListVersion);
- `reservation.py`: Reservation (ReserveNow, CancelReservation);
- `logs.py`: the security extension's GetLog (N01);
- `extended_trigger.py`: the security extension's ExtendedTriggerMessage (on `remote_trigger`'s logic).
- `certificates.py`: Install/DeleteCertificate, GetInstalledCertificateIds, CertificateSigned (M03-M05, A02).
- `signed_firmware.py`: the security extension's SignedUpdateFirmware (L01).
The security extension gets a module of its own. A newcomer finds
the code for any OCPP message in one guess.

Each handler decides and answers at once (handlers hold up the receive loop, so no device I/O and no
`call()` here); what an answer promises runs through `after_reply`, once the answer is on the wire.
Actions of OCPP 1.6 without a handler are answered `NotSupported` by the RPC layer: the honest answer
until a feature is built. Handlers know the charge point only through the Protocols of
`bridge.ocpp.ports`.
"""

from __future__ import annotations

from bridge.ocpp.handlers.core import CoreHandlers
from bridge.ocpp.handlers.firmware import FirmwareHandlers
from bridge.ocpp.handlers.local_list import LocalListHandlers
from bridge.ocpp.handlers.remote_trigger import RemoteTriggerHandlers
from bridge.ocpp.handlers.reservation import ReservationHandlers
from bridge.ocpp.handlers.smart_charging import SmartChargingHandlers

__all__ = [
    "CoreHandlers", "FirmwareHandlers", "LocalListHandlers", "RemoteTriggerHandlers", "ReservationHandlers",
    "SmartChargingHandlers",
]  # fmt: skip
