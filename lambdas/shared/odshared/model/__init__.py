"""The model side: SageMaker's model.tar.gz read without MXNet, the deploy graph, the ONNX export and the model
package the device loads."""
