"""The SSD deploy graph as an ONNX model, built with numpy and onnx alone (no MXNet).

MXNet's own exporter stops at SoftmaxActivation, MultiBoxPrior and MultiBoxDetection (REFERENCE.md A10), so this
package maps every operator itself: ``export`` walks the graph, ``operators`` converts the CNN op by op and folds
MultiBoxPrior into constant anchors, and ``detection`` rebuilds MultiBoxDetection from ONNX operators (decode, best
class, threshold, top-k, NonMaxSuppression), so any ONNX runtime returns final detections in MultiBoxDetection's
layout with no extra code.
"""

from odshared.model.onnx.export import OPSET, OUTPUT_NAME, export_onnx

__all__ = ["OPSET", "OUTPUT_NAME", "export_onnx"]
