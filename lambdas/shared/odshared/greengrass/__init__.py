"""AWS IoT Greengrass v2: the recipes filled in for a release, model component versions, and deployments."""
