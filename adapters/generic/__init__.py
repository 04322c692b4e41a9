"""A device described in configuration (`type: generic`), as a charger and as a meter.

docs/devices/generic.md is the reference of the shape. One module per job: `options` (the
configuration's dataclasses and their checks), `pipeline` (a source's value to a capability's: regex,
JMESPath, map, scale, offset, unit), `expression` (the setter templates' safe evaluator), `registers`
(Modbus values by type), `sources` (the readers and writers on the shared transports), `device` (the
two drivers), `templates` (adapters/templates/*.yaml rendered from their parameters).
"""
