"""Collectors read one kind of source each and produce immutable snapshots."""
