"""YAML presets, each validated against lipdub.infra.config.Config."""
