"""Retention: a match's objects and analytics rows removed past its organization's retention."""
