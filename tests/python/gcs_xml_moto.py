"""moto's S3 server answering Google Cloud Storage's XML API, for the gs:// tests.

object_store's GCS client speaks GCS's XML API, which is S3's REST API with
a few GCS names (https://cloud.google.com/storage/docs/xml-api/overview):
path-style `/<bucket>/<key>` URLs, `list-type=2` listings, the same
multipart calls and XML bodies. Two differences matter to moto, and this
WSGI middleware maps them to S3's:

- authorization: OAuth's `Authorization: Bearer <token>`, or none at all
  (the test's service account sets `disable_oauth`, and object_store then
  sends an empty bearer token or nothing). moto reads any `Authorization`
  as AWS SigV4 and fails on a bearer token, and takes an unsigned request
  as anonymous (which may write but not read), so every request gets a
  SigV4-shaped header naming S3 (moto does not check signatures);
- conditional create, `x-goog-if-generation-match: 0` (object_store's
  `PutMode::Create` on GCS): mapped to S3's `If-None-Match: *`, which moto
  enforces with the same 412 GCS answers.

What this does not exercise: GCS's OAuth and service-account signing, its
`x-goog-generation` numbers (object_store's `PutMode::Update`, which we do
not use) and its JSON API (which object_store does not use).

Usage: python gcs_xml_moto.py PORT
"""

import sys

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple


# The credential scope is what moto reads to pick the service.
SIGV4_S3 = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


class GcsXmlToS3:
    """Rewrites the GCS request headers above, then calls moto."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        environ["HTTP_AUTHORIZATION"] = SIGV4_S3
        if environ.pop("HTTP_X_GOOG_IF_GENERATION_MATCH", None) == "0":
            environ["HTTP_IF_NONE_MATCH"] = "*"
        return self.app(environ, start_response)


def main():
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(
        "127.0.0.1",
        port,
        GcsXmlToS3(app),
        threaded=True,
        request_handler=MotoRequestHandler,
    )


if __name__ == "__main__":
    main()
