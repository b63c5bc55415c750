"""The data side: videos to frames and labeling manifests, Ground Truth output, data preparation for training,
statistics, SageMaker's hyperparameters and the workflow's execution input."""
