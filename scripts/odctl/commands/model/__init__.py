"""Every command about the model, in one place: making one (build: ``odctl train-local``, ``convert``,
``evaluate``, ``evaluate-tracking``) and the stack's versions of it (versions: ``odctl model list|approve|rollback``).
Two groups, since ``odctl --help`` lists them at two steps of the operator's journey."""

from odctl.commands.model import build, versions

__all__ = ["build", "versions"]
