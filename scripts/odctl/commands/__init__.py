"""The odctl subcommands, one module per group; each lists the functions that add its subcommands (``COMMANDS``)."""

from odctl.commands import camera, data, demo, device, fleet, labeling, model, pipeline, registry

# the order of ``odctl --help``: the operator's journey
GROUPS = (data, labeling, model, device, camera, fleet, pipeline, registry, demo)
