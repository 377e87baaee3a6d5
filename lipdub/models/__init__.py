"""Model backends behind small protocols, and the registry that loads each once per process."""
