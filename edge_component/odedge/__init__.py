"""The device side: an OpenCV inference loop for SSD models, publishing detections (Greengrass v2 or MQTT)."""

import os as _os

# OpenCV's native warnings (a missing camera, a stream that will not open) bypass logging and interleave with the
# structured lines; the sources report those failures themselves. OPENCV_LOG_LEVEL=INFO brings them back.
_os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
_os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own lines (AV_LOG_QUIET)
