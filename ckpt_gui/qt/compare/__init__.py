"""Compare a checkpoint with a config in the GUI: picker, tree statuses, mismatch panel."""
