"""Widgets: the welcome view, a checkpoint tab, and its panels."""
