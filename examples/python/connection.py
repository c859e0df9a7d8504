"""How the examples reach a registry: in cleartext, or over TLS with --ca, then with a token and/or a client certificate."""
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
    parser.add_argument("--cert", default="", help="PEM client certificate, for a registry that requires one (mutual TLS); needs --ca and --key")
    parser.add_argument("--key", default="", help="PEM private key of --cert")


def open_channel(args):
    if not args.ca:
        if args.token or args.cert:
            raise SystemExit("--token and --cert need --ca: they go only over TLS")
        return grpc.insecure_channel(args.registry)
    if bool(args.cert) != bool(args.key):
        raise SystemExit("--cert and --key go together")
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(args.ca),
        private_key=read(args.key) if args.key else None,
        certificate_chain=read(args.cert) if args.cert else None,
    )
    if args.token:
        credentials = grpc.composite_channel_credentials(credentials, grpc.access_token_call_credentials(args.token))
    return grpc.secure_channel(args.registry, credentials)


def read(path):
    with open(path, "rb") as pem:
        return pem.read()
