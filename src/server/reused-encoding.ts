import { create, isMessage, toBinary, type DescMessage, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** Each message object's encoding, length prefix included, kept while the object lives. */
const encodedElements = new WeakMap<Message, Uint8Array>();
/** Each answer's gRPC frame, kept while the answer lives: one live change is one answer object for all its watchers. */
const framedAnswers = new WeakMap<Message, Buffer>();

/**
 * Serializes a message like `toBinary`, but encodes the elements of its
 * repeated message fields once per object, however many answers carry them.
 * The registry hands out the same immutable Instance and Event objects to
 * every Discover and every watcher, so a change is encoded once, not once per
 * caller. The cached bytes are spliced in as unknown fields of the same field
 * number: protobuf-es writes those verbatim, and a field's elements keep their
 * order, which is all the encoding asks.
 *
 * Only for the binary format; JSON goes through the message objects as usual.
 */
export function toBinaryReusing<Desc extends DescMessage>(schema: Desc, init: MessageShape<Desc> | MessageInitShape<Desc>): Uint8Array {
  const message: Message = isMessage(init, schema) ? init : create(schema, init);
  const fields = message as unknown as Record<string, unknown>;
  let spliced: Record<string, unknown> | undefined;
  for (const field of schema.fields) {
    if (field.fieldKind !== "list" || field.listKind !== "message") continue;
    const elements = fields[field.localName] as Message[];
    if (elements.length === 0) continue;
    spliced ??= { ...fields, $unknown: [...(message.$unknown ?? [])] };
    spliced[field.localName] = [];
    const unknown = spliced.$unknown as { no: number; wireType: WireType; data: Uint8Array }[];
    for (const element of elements) unknown.push({ no: field.number, wireType: WireType.LengthDelimited, data: elementBytes(field.message, element) });
  }
  return toBinary(schema, (spliced ?? message) as MessageShape<Desc>);
}

/**
 * An answer as a gRPC frame (the five-byte prefix, then toBinaryReusing's
 * bytes), made once per answer object however many streams it is written to.
 */
export function grpcFrameOf<Desc extends DescMessage>(schema: Desc, answer: MessageShape<Desc> | MessageInitShape<Desc>): Buffer {
  const message: Message = isMessage(answer, schema) ? answer : create(schema, answer);
  let frame = framedAnswers.get(message);
  if (frame === undefined) {
    const bytes = toBinaryReusing(schema, message as MessageShape<Desc>);
    frame = Buffer.allocUnsafe(5 + bytes.length);
    frame[0] = 0;
    frame.writeUInt32BE(bytes.length, 1);
    frame.set(bytes, 5);
    framedAnswers.set(message, frame);
  }
  return frame;
}

function elementBytes(schema: DescMessage, element: Message): Uint8Array {
  let bytes = encodedElements.get(element);
  if (bytes === undefined) {
    bytes = new BinaryWriter().bytes(toBinaryReusing(schema, element)).finish();
    encodedElements.set(element, bytes);
  }
  return bytes;
}
