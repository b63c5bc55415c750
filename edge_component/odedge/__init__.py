"""The device side: an OpenCV inference loop for SSD models, publishing detections (Greengrass v2 or MQTT)."""
