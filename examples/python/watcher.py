"""A muster watcher in Python: prints each change to a service, one line each.

Lines look like `EVENT_TYPE_HEALTH_CHANGED py-agent/a-1 HEALTH_STATUS_UNHEALTHY rev 3`.
With --until-expired ID it exits once that instance has expired.
"""
import argparse
import sys

import connection
from muster.v1 import registry_pb2, registry_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    connection.add_arguments(parser)
    parser.add_argument("--service", default="py-agent")
    parser.add_argument("--until-expired", default="", metavar="ID")
    args = parser.parse_args()

    with connection.open_channel(args) as channel:
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        request = registry_pb2.WatchRequest(service=args.service, include_unhealthy=True)
        print(f"watching {args.service or 'every service'}", flush=True)
        for response in registry.Watch(request):
            for event in response.events:
                kind = "CURRENT" if response.snapshot else registry_pb2.EventType.Name(event.type)
                health = registry_pb2.HealthStatus.Name(event.instance.health)
                print(f"{kind} {event.instance.service}/{event.instance.id} {health} rev {event.revision}", flush=True)
                if event.type == registry_pb2.EVENT_TYPE_EXPIRED and event.instance.id == args.until_expired:
                    return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
