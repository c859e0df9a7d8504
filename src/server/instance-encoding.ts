import type { Duration, Timestamp } from "@bufbuild/protobuf/wkt";
import { HealthStatus, type Instance } from "../../gen/muster/v1/registry_pb.js";
import { writeVarint } from "./varint.js";

/*
 * Every Register answer, Discover answer and watch event carries Instances,
 * and protobuf-es encodes them by reflection: 13-14 us each, the largest
 * slice of a registration's profile (BENCHMARKS.md, Register). This
 * writes the same bytes in one pass over the fields. The test
 * `instance-encoding.test.ts` fills every field the schema has, by
 * reflection, and compares with `toBinary`, so a field added to the proto
 * and not here fails it.
 */

const lengthDelimited = 2;
const varintType = 0;

/** Reused between calls: each encoding is copied out at its exact length. */
let scratch = new Uint8Array(1024);
let at = 0;

/**
 * An Instance in protobuf binary, byte for byte what
 * `toBinary(InstanceSchema, instance)` writes (fields in number order,
 * proto3 defaults left out, map entries in the object's key order). Unknown
 * fields are not written: the caller leaves messages that have them to
 * `toBinary`.
 */
export function encodeInstance(instance: Instance): Uint8Array {
  at = 0;
  text(1, instance.service);
  text(2, instance.id);
  text(3, instance.address);
  text(4, instance.version);
  for (const tag of instance.tags) textAlways(5, tag);
  for (const name of Object.keys(instance.labels)) label(6, name, instance.labels[name] ?? "");
  text(7, instance.zone);
  if (instance.weight !== 0) scalar(8, instance.weight >>> 0);
  for (const capability of instance.capabilities) textAlways(9, capability);
  seconds(10, instance.ttl);
  seconds(11, instance.deregisterAfter);
  if (instance.health !== HealthStatus.UNSPECIFIED) scalar(12, instance.health);
  seconds(13, instance.registeredAt);
  seconds(14, instance.lastHeartbeatAt);
  if (instance.revision !== 0n) scalar(15, instance.revision);
  if (instance.drain !== undefined) {
    fieldKey(16, lengthDelimited);
    const lengthAt = reserve(0);
    text(1, instance.drain.reason);
    seconds(2, instance.drain.since);
    prefixLength(lengthAt);
  }
  return scratch.slice(0, at);
}

function text(field: number, value: string): void {
  if (value !== "") textAlways(field, value);
}

function textAlways(field: number, value: string): void {
  fieldKey(field, lengthDelimited);
  utf8(value);
}

/** A map<string, string> entry: a message of key (1) and value (2), both written even when empty. */
function label(field: number, name: string, value: string): void {
  fieldKey(field, lengthDelimited);
  const lengthAt = reserve(name.length + value.length);
  fieldKey(1, lengthDelimited);
  utf8(name);
  fieldKey(2, lengthDelimited);
  utf8(value);
  prefixLength(lengthAt);
}

/** A Duration or a Timestamp: both are (int64 seconds = 1, int32 nanos = 2). */
function seconds(field: number, value: Duration | Timestamp | undefined): void {
  if (value === undefined) return;
  fieldKey(field, lengthDelimited);
  const lengthAt = reserve(0);
  if (value.seconds !== 0n) scalar(1, value.seconds);
  if (value.nanos !== 0) scalar(2, value.nanos);
  prefixLength(lengthAt);
}

function fieldKey(field: number, wireType: number): void {
  varint((field << 3) | wireType);
}

/** A varint field; negative numbers take ten bytes, as int32 and int64 do on the wire. */
function scalar(field: number, value: number | bigint): void {
  fieldKey(field, varintType);
  const number = Number(value);
  if (number >= 0 && number <= Number.MAX_SAFE_INTEGER) varint(number);
  else bigVarint(BigInt.asUintN(64, BigInt(value)));
}

function varint(value: number): void {
  grow(10);
  at = writeVarint(scratch, at, value);
}

function bigVarint(value: bigint): void {
  grow(10);
  while (value > 127n) {
    scratch[at++] = Number(value & 127n) | 128;
    value >>= 7n;
  }
  scratch[at++] = Number(value);
}

/** A length-prefixed UTF-8 string; ASCII, the common case, is copied without an encoder. */
function utf8(value: string): void {
  const lengthAt = reserve(value.length * 3);
  let ascii = true;
  for (let index = 0; index < value.length; index++) {
    const code = value.charCodeAt(index);
    if (code > 127) {
      ascii = false;
      break;
    }
    scratch[at + index] = code;
  }
  if (ascii) at += value.length;
  else at += encoder.encodeInto(value, scratch.subarray(at)).written;
  prefixLength(lengthAt);
}

const encoder = new TextEncoder();

/**
 * Leaves one byte for a length prefix, enough below 128 (prefixLength
 * moves the content when it is not), and room for `size` bytes after it.
 */
function reserve(size: number): number {
  grow(size + 1);
  const lengthAt = at;
  at += 1;
  return lengthAt;
}

function prefixLength(lengthAt: number): void {
  const length = at - lengthAt - 1;
  if (length < 128) {
    scratch[lengthAt] = length;
    return;
  }
  const content = scratch.slice(lengthAt + 1, at);
  at = lengthAt;
  varint(length);
  grow(length);
  scratch.set(content, at);
  at += length;
}

function grow(more: number): void {
  if (at + more <= scratch.length) return;
  const larger = new Uint8Array(Math.max(scratch.length * 2, at + more));
  larger.set(scratch.subarray(0, at));
  scratch = larger;
}
