import { create, isMessage, toBinary, type DescMessage, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { InstanceSchema, type Instance } from "../../gen/muster/v1/registry_pb.js";
import { encodeInstance } from "./instance-encoding.js";
import { varintLength, writeVarint } from "./varint.js";

/** A message field written from bytes encoded earlier: the field's number, then the message. */
interface EncodedField {
  readonly fieldNumber: number;
  readonly message: Uint8Array;
}

/** Each element's encoding, kept while the element object lives, whatever field it is sent in. */
const encodedMessages = new WeakMap<Message, Uint8Array>();
/** Each answer's gRPC frame, kept while the answer lives: one live change is one answer object for all its watchers. */
const framedAnswers = new WeakMap<Message, Buffer>();

/** Encoders written by hand for the messages every answer carries (see instance-encoding.ts). */
const handWritten = new Map<string, (message: Message) => Uint8Array>([[InstanceSchema.typeName, (message) => encodeInstance(message as Instance)]]);

/**
 * An answer as a gRPC frame: the five-byte prefix, then the message as
 * `toBinary` would write it, except that the elements of repeated message
 * fields are encoded once per object, however many answers carry them, and
 * Instances by hand. The registry hands out the same immutable Instance and
 * Event objects to every Discover and every watcher, so a change is encoded
 * once, not once per caller, and a live change's one answer object is
 * framed once for all its watchers. Those fields' bytes follow the rest of
 * the message: protobuf allows fields in any order, and a repeated field's
 * elements keep theirs.
 *
 * Only answers that are message objects are kept framed: an init shape (a
 * Register or Heartbeat answer) is made for one call.
 *
 * Only for the binary format; JSON goes through the message objects as usual.
 */
export function grpcFrameOf<Desc extends DescMessage>(schema: Desc, answer: MessageShape<Desc> | MessageInitShape<Desc>): Buffer {
  if (!isMessage(answer, schema)) return frame(schema, create(schema, answer));
  let framed = framedAnswers.get(answer);
  if (framed === undefined) {
    framed = frame(schema, answer);
    framedAnswers.set(answer, framed);
  }
  return framed;
}

function frame(schema: DescMessage, message: Message): Buffer {
  const { rest, fields } = encodedParts(schema, message);
  const length = encodedLength(rest, fields);
  const framed = Buffer.allocUnsafe(5 + length);
  framed[0] = 0;
  framed.writeUInt32BE(length, 1);
  writeParts(framed, 5, rest, fields);
  return framed;
}

/**
 * The message without its repeated message fields and its Instances, then
 * those fields: each element from its kept encoding, each Instance encoded
 * by hand (a singular one, such as a Register answer's, is sent once).
 */
function encodedParts(schema: DescMessage, message: Message): { rest: Uint8Array; fields: EncodedField[] } {
  const values = message as unknown as Record<string, unknown>;
  const fields: EncodedField[] = [];
  let rest: Record<string, unknown> | undefined;
  for (const field of schema.fields) {
    const value = values[field.localName];
    const encodeByHand = field.fieldKind === "message" && value !== undefined ? handWrittenFor(field.message, value as Message) : undefined;
    if (field.fieldKind === "list" && field.listKind === "message" && (value as Message[]).length > 0) {
      for (const element of value as Message[]) fields.push({ fieldNumber: field.number, message: keptBytes(field.message, element) });
    } else if (encodeByHand !== undefined) {
      fields.push({ fieldNumber: field.number, message: encodeByHand(value as Message) });
    } else continue;
    rest ??= { ...values };
    rest[field.localName] = field.fieldKind === "list" ? [] : undefined;
  }
  return { rest: toBinary(schema, (rest ?? message) as MessageShape<DescMessage>), fields };
}

/** The hand-written encoder for `message`, unless it carries unknown fields, which only toBinary writes. */
function handWrittenFor(schema: DescMessage, message: Message): ((message: Message) => Uint8Array) | undefined {
  return message.$unknown === undefined ? handWritten.get(schema.typeName) : undefined;
}

function keptBytes(schema: DescMessage, message: Message): Uint8Array {
  let bytes = encodedMessages.get(message);
  if (bytes === undefined) {
    bytes = encode(schema, message);
    encodedMessages.set(message, bytes);
  }
  return bytes;
}

function encode(schema: DescMessage, message: Message): Uint8Array {
  const handWrittenEncoder = handWrittenFor(schema, message);
  if (handWrittenEncoder !== undefined) return handWrittenEncoder(message);
  const { rest, fields } = encodedParts(schema, message);
  const bytes = new Uint8Array(encodedLength(rest, fields));
  writeParts(bytes, 0, rest, fields);
  return bytes;
}

function encodedLength(rest: Uint8Array, fields: readonly EncodedField[]): number {
  let length = rest.length;
  for (const { fieldNumber, message } of fields) length += varintLength(fieldNumber << 3) + varintLength(message.length) + message.length;
  return length;
}

function writeParts(target: Uint8Array, offset: number, rest: Uint8Array, fields: readonly EncodedField[]): void {
  target.set(rest, offset);
  let at = offset + rest.length;
  for (const { fieldNumber, message } of fields) {
    at = writeVarint(target, at, (fieldNumber << 3) | 2);
    at = writeVarint(target, at, message.length);
    target.set(message, at);
    at += message.length;
  }
}
