"""The odctl subcommands, one module per group; each registers its own subcommands (``register(sub)``)."""

from odctl.commands import data, demo, device, labeling, model, pipeline

# the order of ``odctl --help``: the operator's journey
GROUPS = (data, labeling, model, device, pipeline, demo)
