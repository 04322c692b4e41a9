"""ocpp-bridge: an OCPP 1.6J charge point for chargers that do not speak OCPP."""

__version__ = "0.1.0"
