"""The OCPP 1.6 security extension's I/O pieces: TLS contexts, the certificate store, the security log.

Below the runtime (which composes them per charge point), above the pure core; never imported by
`bridge.ocpp`, which sees them only through the Protocols of `bridge.ocpp.ports`.
"""
