"""The odctl subcommands, one module per group; each lists the functions that add its subcommands (``COMMANDS``)."""

from odctl.commands import data, demo, device, labeling, model, pipeline

# the order of ``odctl --help``: the operator's journey
GROUPS = (data, labeling, model, device, pipeline, demo)
