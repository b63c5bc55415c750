"""The odctl subcommands, one module per group; each lists its subcommands (``COMMANDS``), each a ``Command``
that adds itself to the parser."""

from odctl.commands import camera, data, demo, device, fleet, labeling, model, pipeline

# the order of ``odctl --help``: the operator's journey (a model is made after labeling, its versions are
# approved or rolled back once the pipeline runs)
GROUPS = (data, labeling, model.build, device, camera, fleet, pipeline, model.versions, demo)
