import { create, isMessage, toBinary, type DescMessage, type Message, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** Each message object's encoding, length prefix included, kept while the object lives. */
const encodedElements = new WeakMap<Message, Uint8Array>();

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

function elementBytes(schema: DescMessage, element: Message): Uint8Array {
  let bytes = encodedElements.get(element);
  if (bytes === undefined) {
    bytes = new BinaryWriter().bytes(toBinaryReusing(schema, element)).finish();
    encodedElements.set(element, bytes);
  }
  return bytes;
}
