"""Schema validation with OCPP 1.6 error codes, as the bridge's upstream link answers it: the check
itself (compiled schemas, jsonschema naming the error, the 1.6 codes, the Decimal `multipleOf`
handling) is adapters/transports/ocpp16_schema.py, shared with a `type: ocpp` charger's link; here
its verdict becomes the OcppError to answer.
"""

from __future__ import annotations

from typing import Any

from adapters.transports import ocpp16_schema as _check
from adapters.transports.ocpp16_schema import CALL as CALL
from adapters.transports.ocpp16_schema import CALLRESULT as CALLRESULT
from adapters.transports.ocpp16_schema import forget_validators as forget_validators
from adapters.transports.ocpp16_schema import is_valid_fast as is_valid_fast
from adapters.transports.ocpp16_schema import is_valid_slow as is_valid_slow
from adapters.transports.ocpp16_schema import schema_of as schema_of
from bridge.ocpp.errors import ErrorCode, OcppError


def violation(message_type: int, action: str, payload: Any) -> OcppError | None:
    """The schema violation of `payload`, as the CALLERROR to answer, or None."""
    found = _check.violation(message_type, action, payload)
    if found is None:
        return None
    return OcppError(ErrorCode(found.code), found.description, dict(found.details))
