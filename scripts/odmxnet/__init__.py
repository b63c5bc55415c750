"""Code that needs MXNet 1.9.1: runs only in the MXNet environment (``.venv-mxnet``), started by odctl.mxnet_env."""
