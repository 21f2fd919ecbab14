"""Container root filesystems made from image layers (`overlay.OverlaySnapshotter`)."""
