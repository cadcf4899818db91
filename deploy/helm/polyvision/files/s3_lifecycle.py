"""Create the object store's bucket and put its lifecycle rules (the chart's s3-lifecycle Job).

Runs in the API image (boto3 comes with aioboto3) as a Helm pre-install/pre-upgrade hook. The
bucket and endpoint come from PV_OBJECTS_URL, read by the same parser the API and the workers
use; credentials from the usual AWS environment (the chart's Secret) or workload identity.

Environment:
    PV_OBJECTS_URL: ``s3://bucket[?endpoint_url=...&region=...]``.
    PV_S3_ABORT_INCOMPLETE_DAYS: days after which an unfinished multipart upload is aborted.
    PV_S3_EXTRA_RULES: JSON list of more S3 LifecycleRule objects, put verbatim.
    PV_S3_CREATE_BUCKET: ``true`` to create the bucket when it is missing.

Idempotent: the rules are replaced as a whole on every run, then read back and compared.
Exit status 0 when the bucket has exactly these rules, 1 with the reason on stderr otherwise.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

ABORT_RULE_ID = "polyvision-abort-incomplete-multipart-uploads"


def lifecycle_rules(abort_days: int, extra_rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bucket's rules: the multipart-abort rule first, then `extra_rules` as given."""
    if abort_days < 1:
        raise ValueError("PV_S3_ABORT_INCOMPLETE_DAYS must be at least 1")
    abort = {
        "ID": ABORT_RULE_ID,
        "Filter": {"Prefix": ""},
        "Status": "Enabled",
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": abort_days},
    }
    ids = [rule.get("ID") for rule in extra_rules]
    if ABORT_RULE_ID in ids or len(ids) != len(set(ids)):
        raise ValueError("PV_S3_EXTRA_RULES: every rule needs its own ID")
    return [abort, *extra_rules]


def apply(client: Any, bucket: str, rules: list[dict[str, Any]], *, create: bool) -> None:
    """Create `bucket` when missing (and allowed), then put and verify `rules`."""
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
        if not create:
            raise SystemExit(f"s3-lifecycle: bucket {bucket!r} does not exist") from None
        region = client.meta.region_name
        if region and region != "us-east-1":
            client.create_bucket(
                Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region}
            )
        else:
            client.create_bucket(Bucket=bucket)
        sys.stdout.write(f"s3-lifecycle: created bucket {bucket}\n")
    client.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": rules}
    )
    stored = client.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    if sorted(rule["ID"] for rule in stored) != sorted(rule["ID"] for rule in rules):
        raise SystemExit(f"s3-lifecycle: bucket {bucket!r} did not keep the rules: {stored}")
    sys.stdout.write(f"s3-lifecycle: {bucket}: {len(rules)} lifecycle rule(s) in place\n")


def main(environ: Mapping[str, str] = os.environ, client: Any = None) -> int:
    """Read the environment, then `apply`; `client` replaces the boto3 client (tests)."""
    from polyvision.storage.objects import parse_object_store_url

    url = parse_object_store_url(environ["PV_OBJECTS_URL"])
    if url.backend != "s3":
        sys.stdout.write("s3-lifecycle: PV_OBJECTS_URL is not s3://, nothing to do\n")
        return 0
    rules = lifecycle_rules(
        int(environ.get("PV_S3_ABORT_INCOMPLETE_DAYS", "7")),
        json.loads(environ.get("PV_S3_EXTRA_RULES", "[]")),
    )
    if client is None:
        import boto3

        client = boto3.client("s3", endpoint_url=url.endpoint_url, region_name=url.region)
    create = environ.get("PV_S3_CREATE_BUCKET", "true").lower() == "true"
    apply(client, url.bucket, rules, create=create)
    return 0


if __name__ == "__main__":
    sys.exit(main())
