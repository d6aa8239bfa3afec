"""A real S3-compatible server for the results store's tests: moto's S3 HTTP
implementation (``moto.server.ThreadedMotoServer``) in a thread on a free port,
offline, with a bucket made by boto3. Import as ``from s3kit import ...``
(``tests`` is on ``sys.path`` once ``tests/conftest.py`` is loaded).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

__all__ = ["ACCESS_KEY", "S3Server", "SECRET_KEY", "moto_s3"]

#: Any key is accepted by moto; these are what the tests sign with.
ACCESS_KEY = "testing-key"
SECRET_KEY = "testing-secret"
REGION = "us-east-1"


@dataclass
class S3Server:
    """A running moto S3 server and one bucket in it."""

    endpoint: str
    bucket: str
    client: Any  #: a boto3 S3 client of the server

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key below ``prefix`` (all pages)."""
        found: list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        )
        for page in pages:
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def credentials_file(self, directory: Path) -> Path:
        """A credentials file for ``results_credentials_file``."""
        path = directory / "s3-credentials.toml"
        path.write_text(
            f'access_key_id = "{ACCESS_KEY}"\nsecret_access_key = "{SECRET_KEY}"\n'
        )
        path.chmod(0o600)
        return path

    def env(self, directory: Path, **more: str) -> dict[str, str]:
        """A server's environment for the S3 results store on this server."""
        return {
            "AIOUWS_RESULTS_STORE": "s3",
            "AIOUWS_RESULTS_BUCKET": self.bucket,
            "AIOUWS_RESULTS_ENDPOINT": self.endpoint,
            "AIOUWS_RESULTS_REGION": REGION,
            "AIOUWS_RESULTS_CREDENTIALS_FILE": str(self.credentials_file(directory)),
            **more,
        }


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """Start moto's S3 server on a free port with a fresh bucket; stop it after."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        bucket = "results-" + secrets.token_hex(4)
        client.create_bucket(Bucket=bucket)
        yield S3Server(endpoint=endpoint, bucket=bucket, client=client)
    finally:
        server.stop()
