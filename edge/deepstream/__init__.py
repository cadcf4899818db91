"""The Jetson DeepStream capture pipeline description (generated; see `pipeline`)."""
