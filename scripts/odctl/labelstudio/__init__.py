"""Labeling with Label Studio: a local server in its own environment, projects and tasks pushed from a manifest,
annotations pulled back as a Ground Truth bounding-box output manifest (the format the rest of the chain reads)."""
