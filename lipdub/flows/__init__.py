"""Prefect flows (the per-clip DAG) and the CLI that runs them."""
