"""CDK constructs and stacks, and the local (Docker-free) Lambda bundling they use."""
