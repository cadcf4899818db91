"""Session-wide fixtures: each real server lives in its own plugin module under fixtures/."""

pytest_plugins = [
    "tests.fixtures.s3",
    "tests.fixtures.postgres",
    "tests.fixtures.temporal",
]
