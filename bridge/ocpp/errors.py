"""OCPP-J 1.6 error codes and the exceptions of the RPC layer.

Two families:
- `OcppError` is raised *by a handler* (or by validation) to answer an
  incoming CALL with a CALLERROR. Its codes are the 1.6 spellings of OCPP-J
  Table 7, including the misspelt `OccurenceConstraintViolation` and
  `FormationViolation` that the 1.6 errata keep; the `ocpp` library's 2.0.1
  names (`FormatViolation`) are never sent.
- `CallFailed` and its subclasses are raised *to the caller* of an outgoing
  CALL: the central system answered with a CALLERROR, did not answer in
  time, the answer broke the schema, or the connection dropped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    NOT_IMPLEMENTED = "NotImplemented"
    NOT_SUPPORTED = "NotSupported"
    INTERNAL_ERROR = "InternalError"
    PROTOCOL_ERROR = "ProtocolError"
    SECURITY_ERROR = "SecurityError"
    FORMATION_VIOLATION = "FormationViolation"
    PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
    OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
    TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
    GENERIC_ERROR = "GenericError"


class OcppError(Exception):
    """Answer the CALL being handled with this CALLERROR."""

    def __init__(self, code: ErrorCode, description: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}


class CallFailed(Exception):
    """An outgoing CALL did not produce a usable CALLRESULT."""


class NotConnected(CallFailed):
    """There is no open connection, or it dropped before the answer came."""


class CallTimeout(CallFailed):
    """No answer within MessageTimeout."""


class CallErrorReceived(CallFailed):
    """The central system answered with a CALLERROR."""

    def __init__(self, action: str, code: str, description: str, details: Any) -> None:
        super().__init__(f"{action} answered with CALLERROR {code}: {description}")
        self.action = action
        self.code = code
        self.description = description
        self.details = details


class InvalidResponse(CallFailed):
    """The CALLRESULT does not match the action's response schema."""
