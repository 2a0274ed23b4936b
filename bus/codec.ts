import { Packr } from 'msgpackr';

// Plain msgpack only (no msgpackr record extension), so any independent msgpack decoder reads our bytes.
const packr = new Packr({ useRecords: false, moreTypes: false, encodeUndefinedAsNil: false, mapsAsObjects: true });

/** Encodes a message object as msgpack. */
export function encode(message: unknown): Uint8Array {
  return packr.pack(message);
}

/** Decodes msgpack bytes; throws on malformed input. */
export function decode(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
