"""Templates of the generic device (`type: generic`, `template: NAME`): one YAML file per model, a
generic device block filled in from a few parameters. The loader is adapters/generic/templates.py;
the shape is docs/devices/generic.md ("Templates"). A package so that the files install with it."""
