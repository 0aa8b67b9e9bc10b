"""trainer: trains, evaluates and (on a schedule) retrains the segmentation models."""
