"""The OCPP 1.6 schema check of a `type: ocpp` charger's calls and of the answers the bridge gives
them: the project's one check, adapters/transports/ocpp16_schema.py (compiled schemas decide a valid
payload in microseconds; jsonschema names what an invalid one breaks, as a 1.6 error code), named
here for the link (ocpp_device_link.py)."""

from __future__ import annotations

from adapters.transports.ocpp16_schema import CALL as CALL
from adapters.transports.ocpp16_schema import CALLRESULT as CALLRESULT
from adapters.transports.ocpp16_schema import UnknownAction as UnknownAction
from adapters.transports.ocpp16_schema import Violation as Violation
from adapters.transports.ocpp16_schema import violation as violation
