import { create, createRegistry, fromBinary, toBinary, type DescFile, type Registry } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * gRPC server reflection, so `buf curl`, grpcurl and Postman can list and
 * call every method with no .proto files at hand. No package implements it
 * for Connect, hence this one. v1alpha is wire-identical to v1: its requests
 * are re-read as v1 and the answers re-read as v1alpha.
 */
export function reflectionServices(files: readonly DescFile[]): {
  v1: ServiceImpl<typeof v1.ServerReflection>;
  v1alpha: ServiceImpl<typeof v1alpha.ServerReflection>;
} {
  const reflector = new Reflector(files);
  return {
    v1: {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) yield reflector.answer(request);
      },
    },
    v1alpha: {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) {
          const answer = reflector.answer(fromBinary(v1.ServerReflectionRequestSchema, toBinary(v1alpha.ServerReflectionRequestSchema, request)));
          yield fromBinary(v1alpha.ServerReflectionResponseSchema, toBinary(v1.ServerReflectionResponseSchema, answer));
        }
      },
    },
  };
}

class Reflector {
  /** Every served file and its imports, by file name. */
  private readonly files = new Map<string, DescFile>();
  private readonly registry: Registry;
  private readonly services: string[];
  private readonly encoded = new Map<string, Uint8Array>();

  constructor(served: readonly DescFile[]) {
    for (const file of served) for (const each of withDependencies(file)) this.files.set(each.name, each);
    this.registry = createRegistry(...this.files.values());
    this.services = served.flatMap((file) => file.services.map((service) => service.typeName)).sort();
  }

  answer(request: v1.ServerReflectionRequest): v1.ServerReflectionResponse {
    const base = { validHost: request.host, originalRequest: request };
    const { messageRequest } = request;
    switch (messageRequest.case) {
      case "listServices":
        return create(v1.ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "listServicesResponse", value: { service: this.services.map((name) => ({ name })) } },
        });
      case "fileByFilename":
        return this.fileResponse(base, this.files.get(messageRequest.value), `no file named ${messageRequest.value}`);
      case "fileContainingSymbol":
        return this.fileResponse(base, this.fileOfSymbol(messageRequest.value), `no symbol named ${messageRequest.value}`);
      case "allExtensionNumbersOfType":
        if (this.registry.getMessage(messageRequest.value) === undefined) return error(base, Code.NotFound, `no message named ${messageRequest.value}`);
        return create(v1.ServerReflectionResponseSchema, {
          ...base,
          messageResponse: { case: "allExtensionNumbersResponse", value: { baseTypeName: messageRequest.value, extensionNumber: [] } },
        });
      case "fileContainingExtension":
        return error(base, Code.NotFound, "this server defines no extensions");
      default:
        return error(base, Code.InvalidArgument, "the request names no question");
    }
  }

  /** A symbol is a message, enum, service or extension, or a method or field inside one. */
  private fileOfSymbol(symbol: string): DescFile | undefined {
    for (let name = symbol; name !== ""; name = name.slice(0, Math.max(0, name.lastIndexOf(".")))) {
      const found = this.registry.get(name);
      if (found !== undefined) return found.file;
    }
    return undefined;
  }

  private fileResponse(base: object, file: DescFile | undefined, missing: string): v1.ServerReflectionResponse {
    if (file === undefined) return error(base, Code.NotFound, missing);
    const fileDescriptorProto = withDependencies(file).map((each) => this.encode(each));
    return create(v1.ServerReflectionResponseSchema, { ...base, messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto } } });
  }

  private encode(file: DescFile): Uint8Array {
    let bytes = this.encoded.get(file.name);
    if (bytes === undefined) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      this.encoded.set(file.name, bytes);
    }
    return bytes;
  }
}

/** The file first, then everything it imports, each once. */
function withDependencies(file: DescFile, seen = new Set<string>()): DescFile[] {
  if (seen.has(file.name)) return [];
  seen.add(file.name);
  return [file, ...file.dependencies.flatMap((dependency) => withDependencies(dependency, seen))];
}

function error(base: object, code: Code, message: string): v1.ServerReflectionResponse {
  return create(v1.ServerReflectionResponseSchema, { ...base, messageResponse: { case: "errorResponse", value: { errorCode: code, errorMessage: message } } });
}
