"""Credential and permission errors from moto running with IAM authentication."""

from __future__ import annotations

import pytest
from s3_standin import MotoWithAuth

from bctui.s3 import S3Access, S3AccessDenied, S3CredentialsError
from bctui.secret import Secret


def _access(server: MotoWithAuth, key_id: str, secret: str) -> S3Access:
    return S3Access(key_id, Secret(secret), endpoint_url=server.url)


def test_the_right_key_may_check_its_own_bucket(moto_auth: MotoWithAuth) -> None:
    _access(moto_auth, moto_auth.key_id, moto_auth.secret).check_bucket("allowed")


def test_a_wrong_secret_is_a_credentials_error(moto_auth: MotoWithAuth) -> None:
    wrong = "Wrong/Secret/Key/That/Is/Long/Enough0000"
    with pytest.raises(S3CredentialsError) as caught:
        _access(moto_auth, moto_auth.key_id, wrong).check_bucket("allowed")
    assert caught.value.code == "SignatureDoesNotMatch"
    assert "'allowed'" in caught.value.where
    assert "secret access key" in caught.value.fix
    assert wrong not in str(caught.value)


def test_an_unknown_key_id_is_a_credentials_error(moto_auth: MotoWithAuth) -> None:
    with pytest.raises(S3CredentialsError) as caught:
        _access(moto_auth, "AKIAUNKNOWNKEY000000", moto_auth.secret).list_buckets()
    assert caught.value.code == "InvalidAccessKeyId"
    assert moto_auth.secret not in str(caught.value)


def test_another_bucket_is_access_denied(moto_auth: MotoWithAuth) -> None:
    access = _access(moto_auth, moto_auth.key_id, moto_auth.secret)
    with pytest.raises(S3AccessDenied) as caught:
        access.check_bucket("forbidden")
    assert caught.value.code == "AccessDenied"
    assert "'forbidden'" in caught.value.where
    assert "s3:ListBucket" in caught.value.fix
    # Listing buckets needs s3:ListAllMyBuckets, which this key lacks too.
    with pytest.raises(S3AccessDenied):
        access.list_buckets()
