"""Plumbing: config schema, artifact layout, stage cache, manifests."""
