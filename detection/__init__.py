"""Motion detection in camera frames: background model, blobs, detections on the ground."""
