"""The parts a charge point is composed of at run time (bridge/chargepoint.py composes them).

Each owns one concern: the device coordinator of a connector, the effect runner that carries out the
connector core's decisions in order, and (to come) the authorizer, metering, status reporting and
recovery after a restart. They sit above `bridge.core` (pure decisions) and beside `bridge.ocpp`
(the link), and below the daemon.
"""
