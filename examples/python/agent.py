"""A muster agent in Python: registers, then heartbeats at a third of its ttl.

With --beats N it stops heartbeating after N heartbeats and keeps running
silently, as a hung process would, so the registry marks it UNHEALTHY and
then expires it. Without it, it heartbeats until Ctrl-C, then deregisters.
Each heartbeat's answer says whether an operator drained the instance
(`muster drain`): a worker would stop taking new work until it is undrained.
"""
import argparse
import signal
import sys
import threading

import grpc
from google.protobuf.duration_pb2 import Duration

import connection
from muster.v1 import registry_pb2, registry_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    connection.add_arguments(parser)
    parser.add_argument("--service", default="py-agent")
    parser.add_argument("--id", default="")
    parser.add_argument("--address", default="127.0.0.1:9000")
    parser.add_argument("--ttl", type=float, default=3.0, help="seconds")
    parser.add_argument("--deregister-after", type=float, default=3.0, help="seconds")
    parser.add_argument("--beats", type=int, default=-1, help="stop heartbeating after this many")
    args = parser.parse_args()

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with connection.open_channel(args) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        instance = registry_pb2.Instance(
            service=args.service,
            id=args.id,
            address=args.address,
            labels={"language": "python"},
            ttl=Duration(seconds=int(args.ttl), nanos=int((args.ttl % 1) * 1e9)),
            deregister_after=Duration(seconds=int(args.deregister_after), nanos=int((args.deregister_after % 1) * 1e9)),
        )
        registered = registry.Register(registry_pb2.RegisterRequest(instance=instance)).instance
        print(f"registered {registered.service}/{registered.id} at revision {registered.revision}", flush=True)

        beats = 0
        drained = registered.HasField("drain")
        while not stop.wait(args.ttl / 3):
            if args.beats >= 0 and beats >= args.beats:
                continue
            try:
                answer = registry.Heartbeat(registry_pb2.HeartbeatRequest(service=registered.service, id=registered.id))
                beats += 1
                if answer.drained != drained:
                    drained = answer.drained
                    print("drained by an operator: taking no new work" if drained else "undrained: taking work again", flush=True)
                if beats == args.beats:
                    print(f"stopped heartbeating after {beats} heartbeats", flush=True)
            except grpc.RpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    registered = registry.Register(registry_pb2.RegisterRequest(instance=registered)).instance
                    print(f"registered again at revision {registered.revision}", flush=True)
                else:
                    print(f"heartbeat failed: {error.code().name}; retrying", flush=True)

        if args.beats < 0:
            registry.Deregister(registry_pb2.DeregisterRequest(service=registered.service, id=registered.id))
            print(f"deregistered {registered.service}/{registered.id}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
