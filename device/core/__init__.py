"""The screening core: a photo in, a `Verdict` out (bundle and manifest, preprocessing, runtimes,
the gates, the decision). No camera, screen or saved state."""
