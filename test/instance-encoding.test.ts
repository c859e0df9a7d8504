import { create, fromBinary, ScalarType, toBinary, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DiscoverResponseSchema, EventSchema, EventType, InstanceSchema, RegisterResponseSchema, WatchResponseSchema, type Instance } from "../gen/muster/v1/registry_pb.js";
import { encodeInstance } from "../src/server/instance-encoding.js";
import { grpcFrameOf } from "../src/server/reused-encoding.js";

/** A value other than the field's default, found by reflection, so a field added to the proto is filled too. */
function someValue(field: DescField, seed: number): unknown {
  switch (field.fieldKind) {
    case "scalar":
      return scalarValue(field.scalar, seed);
    case "enum":
      return field.enum.values.at(-1)?.number;
    case "list":
      return field.listKind === "message" ? [filled(field.message, seed), filled(field.message, seed + 1)] : field.listKind === "enum" ? [1] : [`a${seed}`, `b${seed}`];
    case "map":
      return { [`k${seed}`]: `v${seed}`, [`l${seed}`]: "" };
    case "message":
      return filled(field.message, seed);
  }
}

function scalarValue(type: ScalarType, seed: number): unknown {
  switch (type) {
    case ScalarType.STRING:
      return `v${seed}`;
    case ScalarType.BOOL:
      return true;
    case ScalarType.BYTES:
      return new Uint8Array([seed]);
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(seed);
    default:
      return seed;
  }
}

function filled(schema: DescMessage, seed: number): Message {
  const init: Record<string, unknown> = {};
  schema.fields.forEach((field, index) => (init[field.localName] = someValue(field, seed + index + 1)));
  return create(schema, init);
}

const text = fc.oneof(fc.string(), fc.string({ unit: "binary" }), fc.constantFrom("", "\ud800", "a\udc00b", "é".repeat(200)));
const int64 = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
const seconds = fc.option(fc.record({ seconds: int64, nanos: fc.integer({ min: -999_999_999, max: 999_999_999 }) }), { nil: undefined });
const instances = fc
  .record({
    service: text,
    id: text,
    address: text,
    version: text,
    tags: fc.array(text, { maxLength: 4 }),
    // Not "__proto__" (fast-check tries it on purpose): no registered label has it (keys start with a letter
    // or digit), and protobuf-es's fromBinary drops it, since its maps are plain objects and that key sets the prototype.
    labels: fc.dictionary(
      text.filter((key) => key !== "__proto__"),
      text,
      { maxKeys: 4 },
    ),
    zone: text,
    weight: fc.nat({ max: 2 ** 32 - 1 }),
    capabilities: fc.array(text, { maxLength: 4 }),
    ttl: seconds,
    deregisterAfter: seconds,
    health: fc.integer({ min: -3, max: 5 }),
    registeredAt: seconds,
    lastHeartbeatAt: seconds,
    revision: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    // Present with every field empty too: a set message field is written even when empty.
    drain: fc.option(fc.record({ reason: text, since: seconds }), { nil: undefined }),
  })
  .map((fields) => create(InstanceSchema, fields));

describe("the hand-written Instance encoding", () => {
  it("writes exactly what toBinary writes when every field the schema has is set", () => {
    const instance = filled(InstanceSchema, 1) as Instance;
    for (const field of InstanceSchema.fields) expect(instance[field.localName as keyof Instance], field.name).not.toEqual(field.fieldKind === "list" ? [] : create(InstanceSchema)[field.localName as keyof Instance]);
    expect(Buffer.from(encodeInstance(instance))).toEqual(Buffer.from(toBinary(InstanceSchema, instance)));
  });

  it("writes exactly what toBinary writes, for any field values (unicode, lone surrogates, long strings, negative and 64-bit numbers)", () => {
    fc.assert(
      fc.property(instances, (instance) => {
        expect(Buffer.from(encodeInstance(instance))).toEqual(Buffer.from(toBinary(InstanceSchema, instance)));
      }),
      { numRuns: 500 },
    );
  });

  it("frames answers that decode to the messages given: Register, Discover, and watch events (unknown fields kept)", () => {
    fc.assert(
      fc.property(fc.array(instances, { minLength: 1, maxLength: 5 }), (list) => {
        const withUnknown = fromBinary(InstanceSchema, new Uint8Array([...toBinary(InstanceSchema, list[0] as Instance), 0xf8, 0x06, 0x01]));
        const answers: [DescMessage, Message][] = [
          [RegisterResponseSchema, create(RegisterResponseSchema, { instance: list[0], revision: 9n })],
          [RegisterResponseSchema, create(RegisterResponseSchema, { instance: withUnknown, revision: 9n })],
          [DiscoverResponseSchema, create(DiscoverResponseSchema, { instances: [...list, withUnknown], revision: 3n })],
          [WatchResponseSchema, create(WatchResponseSchema, { events: list.map((instance, revision) => create(EventSchema, { instance, revision: BigInt(revision), type: EventType.REGISTERED })) })],
        ];
        for (const [schema, answer] of answers) {
          const frame = grpcFrameOf(schema, answer);
          expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
          // Compared as toBinary writes them: a lone surrogate is U+FFFD once encoded, by either encoder.
          const decoded = fromBinary(schema, frame.subarray(5));
          expect(Buffer.from(toBinary(schema, decoded))).toEqual(Buffer.from(toBinary(schema, answer)));
        }
      }),
      { numRuns: 100 },
    );
  });
});
