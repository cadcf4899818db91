"""Benchmarks: each prints ratios against its named peer and writes bench/results/<name>.json."""
