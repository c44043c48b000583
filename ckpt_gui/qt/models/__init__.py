"""Qt item models: thin adapters over core objects (internalPointer = the core node)."""
