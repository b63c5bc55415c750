"""odctl: the operator CLI (data preparation, local training, packaging, pipeline control, the demo)."""
