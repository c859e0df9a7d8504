import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Availability, Registry } from "../domain/registry.js";
import { isServiceName } from "../domain/rules.js";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthCheckResponseSchema,
  type Health,
  type HealthCheckResponse,
} from "../../gen/grpc/health/v1/health_pb.js";
import { RegistryService } from "../../gen/muster/v1/registry_pb.js";
import { everyInstance } from "../domain/filter.js";

/** The names that mean "the registry itself" rather than a registered service. */
const selfNames = new Set(["", RegistryService.typeName]);

const statusOf: Record<Availability, ServingStatus> = {
  serving: ServingStatus.SERVING,
  "not-serving": ServingStatus.NOT_SERVING,
  unknown: ServingStatus.SERVICE_UNKNOWN,
};

/**
 * The standard gRPC health service, so any health client can ask "is X
 * available?". "" and muster.v1.RegistryService are the registry itself:
 * SERVING while it takes writes. Any other name is a registered service:
 * SERVING with at least one HEALTHY instance, NOT_SERVING with instances
 * but none healthy, unknown (NOT_FOUND on Check) with none.
 */
export function healthServiceImpl(registry: Registry): ServiceImpl<typeof Health> {
  const statusNow = (service: string): ServingStatus =>
    selfNames.has(service)
      ? registry.acceptingWrites ? ServingStatus.SERVING : ServingStatus.NOT_SERVING
      : statusOf[registry.availability(service)];
  const response = (status: ServingStatus): HealthCheckResponse => create(HealthCheckResponseSchema, { status });

  return {
    check(request) {
      const status = statusNow(request.service);
      if (status === ServingStatus.SERVICE_UNKNOWN) throw new ConnectError(`service ${JSON.stringify(request.service)} has no registered instances`, Code.NotFound);
      return response(status);
    },

    list() {
      const names = [...selfNames, ...registry.serviceNames()];
      return { statuses: Object.fromEntries(names.map((name) => [name, response(statusNow(name))])) };
    },

    async *watch(request, context) {
      const { service } = request;
      if (selfNames.has(service) || !isServiceName(service)) {
        // These never change but for the registry closing.
        yield response(statusNow(service));
        if (!registry.acceptingWrites) return;
        await closedOrCancelled(registry, context);
        if (!context.signal.aborted && selfNames.has(service)) yield response(ServingStatus.NOT_SERVING);
        return;
      }
      const stream = registry.watch({ ...everyInstance, service }, 0);
      const stop = () => void stream.return();
      context.signal.addEventListener("abort", stop, { once: true });
      let last: ServingStatus | undefined;
      try {
        for await (const batch of stream) {
          if (batch.more) continue;
          const status = statusNow(service);
          if (status === last) continue;
          last = status;
          yield response(status);
        }
      } finally {
        context.signal.removeEventListener("abort", stop);
        stop();
      }
    },
  };
}

function closedOrCancelled(registry: Registry, context: HandlerContext): Promise<void> {
  return new Promise<void>((resolve) => {
    const unsubscribe = registry.onClose(resolve);
    context.signal.addEventListener("abort", () => {
      unsubscribe();
      resolve();
    }, { once: true });
  });
}
