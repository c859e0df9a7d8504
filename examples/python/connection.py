"""How the examples reach a registry: in cleartext, or over TLS with --ca and then with a token."""
import os

import grpc


def add_arguments(parser):
    parser.add_argument("--registry", default="127.0.0.1:6878", help="host:port of the registry")
    parser.add_argument("--ca", default="", help="PEM file of the CA that signed a TLS registry's certificate")
    parser.add_argument(
        "--token",
        default=os.environ.get("MUSTER_TOKEN", ""),
        help="bearer token, for a registry that requires one (default $MUSTER_TOKEN); needs --ca, since gRPC sends tokens only over TLS",
    )


def open_channel(args):
    if not args.ca:
        if args.token:
            raise SystemExit("--token needs --ca: gRPC sends tokens only over TLS")
        return grpc.insecure_channel(args.registry)
    with open(args.ca, "rb") as pem:
        credentials = grpc.ssl_channel_credentials(root_certificates=pem.read())
    if args.token:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(args.token))
    return grpc.secure_channel(args.registry, credentials)
