"""What a re-render of the virtual camera reuses from a processed revision (`view_sources`)."""
