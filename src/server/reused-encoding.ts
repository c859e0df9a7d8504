import { create, isMessage, toBinary, type DescMessage, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** An element of a repeated message field, encoded as that field: tag, length, message. */
interface EncodedElement {
  readonly fieldNumber: number;
  readonly bytes: Uint8Array;
}

/** Each element's encoding, kept while the element object lives. */
const encodedElements = new WeakMap<Message, EncodedElement>();
/** Each answer's gRPC frame, kept while the answer lives: one live change is one answer object for all its watchers. */
const framedAnswers = new WeakMap<Message, Buffer>();

/**
 * An answer as a gRPC frame: the five-byte prefix, then the message as
 * `toBinary` would write it, except that the elements of repeated message
 * fields are encoded once per object, however many answers carry them. The
 * registry hands out the same immutable Instance and Event objects to every
 * Discover and every watcher, so a change is encoded once, not once per
 * caller, and a live change's one answer object is framed once for all its
 * watchers. The elements' bytes follow the rest of the message: protobuf
 * allows fields in any order, and a field's elements keep theirs.
 *
 * Only for the binary format; JSON goes through the message objects as usual.
 */
export function grpcFrameOf<Desc extends DescMessage>(schema: Desc, answer: MessageShape<Desc> | MessageInitShape<Desc>): Buffer {
  const message: Message = isMessage(answer, schema) ? answer : create(schema, answer);
  let frame = framedAnswers.get(message);
  if (frame === undefined) {
    const prefix = Buffer.alloc(5);
    const parts = encodedParts(schema, message as MessageShape<Desc>);
    prefix.writeUInt32BE(parts.reduce((length, part) => length + part.length, 0), 1);
    frame = Buffer.concat([prefix, ...parts]);
    framedAnswers.set(message, frame);
  }
  return frame;
}

/** The message without its repeated message fields, then each of their elements. */
function encodedParts<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Uint8Array[] {
  const fields = message as unknown as Record<string, unknown>;
  const elements: Uint8Array[] = [];
  let rest: Record<string, unknown> | undefined;
  for (const field of schema.fields) {
    if (field.fieldKind !== "list" || field.listKind !== "message") continue;
    const list = fields[field.localName] as Message[];
    if (list.length === 0) continue;
    rest ??= { ...fields };
    rest[field.localName] = [];
    for (const element of list) elements.push(elementBytes(field.message, field.number, element));
  }
  return [toBinary(schema, (rest ?? message) as MessageShape<Desc>), ...elements];
}

function elementBytes(schema: DescMessage, fieldNumber: number, element: Message): Uint8Array {
  const cached = encodedElements.get(element);
  if (cached?.fieldNumber === fieldNumber) return cached.bytes;
  const bytes = new BinaryWriter().tag(fieldNumber, WireType.LengthDelimited).bytes(Buffer.concat(encodedParts(schema, element))).finish();
  encodedElements.set(element, { fieldNumber, bytes });
  return bytes;
}
