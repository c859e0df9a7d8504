/*
 * Protobuf's base-128 varints, for the encoders that write bytes themselves
 * (instance-encoding.ts, reused-encoding.ts).
 */

/** Writes `value`, a non-negative safe integer, at `at`; returns the position after it. */
export function writeVarint(target: Uint8Array, at: number, value: number): number {
  while (value > 0x7fffffff) {
    target[at++] = (value % 128) | 128;
    value = Math.floor(value / 128);
  }
  while (value > 127) {
    target[at++] = (value & 127) | 128;
    value >>>= 7;
  }
  target[at++] = value;
  return at;
}

/** How many bytes writeVarint takes for `value`. */
export function varintLength(value: number): number {
  let length = 1;
  for (; value > 127; value = Math.floor(value / 128)) length++;
  return length;
}
