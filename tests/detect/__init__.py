"""Tests of the pure detection core (YOLOX decoding, tiling, model store)."""
