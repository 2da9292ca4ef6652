"""The s3:// storage URL's options reach boto3 as they are (no connection is made)."""

import pytest
from botocore.exceptions import InvalidS3AddressingStyleError

from pallet.storage.s3 import S3BlobStore


@pytest.mark.parametrize("style", ["auto", "virtual", "path"])
def test_addressing_style_is_passed_on(style: str) -> None:
    store = S3BlobStore(f"s3://bucket/pre?endpoint_url=http://127.0.0.1:9&addressing_style={style}")
    assert store.client.meta.config.s3 == {"addressing_style": style}
    assert (store.bucket, store.prefix) == ("bucket", "pre")


def test_default_addressing_style_is_path() -> None:
    store = S3BlobStore("s3://bucket?endpoint_url=http://127.0.0.1:9")
    assert store.client.meta.config.s3 == {"addressing_style": "path"}


def test_unknown_addressing_style_is_refused_as_botocore_does() -> None:
    with pytest.raises(InvalidS3AddressingStyleError, match="virtul"):
        S3BlobStore("s3://bucket?endpoint_url=http://127.0.0.1:9&addressing_style=virtul")
