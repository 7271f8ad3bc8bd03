"""The `ivi-render` command: a thin click layer over the ivi_vfx engine."""
