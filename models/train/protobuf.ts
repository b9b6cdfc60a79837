// The few protobuf wire-format pieces TensorBoard's Event files need, written by hand:
// varints, fixed 32/64-bit fields and length-delimited fields; plus a generic field reader.

export type Field =
  | { number: number; wire: 0; value: bigint }
  | { number: number; wire: 1; value: Uint8Array }
  | { number: number; wire: 2; value: Uint8Array }
  | { number: number; wire: 5; value: Uint8Array };

/** Accumulates encoded fields of one message. */
export class ProtoWriter {
  private parts: Uint8Array[] = [];

  private varint(value: bigint): void {
    const bytes: number[] = [];
    let v = BigInt.asUintN(64, value);
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      bytes.push(byte);
    } while (v !== 0n);
    this.parts.push(Uint8Array.from(bytes));
  }

  private key(field: number, wire: number): void {
    this.varint(BigInt((field << 3) | wire));
  }

  int64(field: number, value: number | bigint): this {
    this.key(field, 0);
    this.varint(BigInt(value));
    return this;
  }

  /** A fixed-width little-endian field: wire type 1 (8 bytes) or 5 (4 bytes). */
  private fixed(field: number, wire: 1 | 5, write: (view: DataView) => void): this {
    this.key(field, wire);
    const bytes = new Uint8Array(wire === 1 ? 8 : 4);
    write(new DataView(bytes.buffer));
    this.parts.push(bytes);
    return this;
  }

  double(field: number, value: number): this {
    return this.fixed(field, 1, (view) => view.setFloat64(0, value, true));
  }

  float(field: number, value: number): this {
    return this.fixed(field, 5, (view) => view.setFloat32(0, value, true));
  }

  /** A packed repeated double field (proto3's default for `repeated double`). */
  packedDoubles(field: number, values: ArrayLike<number>): this {
    const bytes = new Uint8Array(values.length * 8);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < values.length; i++) view.setFloat64(i * 8, values[i]!, true);
    return this.bytes(field, bytes);
  }

  bytes(field: number, value: Uint8Array): this {
    this.key(field, 2);
    this.varint(BigInt(value.length));
    this.parts.push(value);
    return this;
  }

  string(field: number, value: string): this {
    return this.bytes(field, new TextEncoder().encode(value));
  }

  message(field: number, value: ProtoWriter): this {
    return this.bytes(field, value.finish());
  }

  finish(): Uint8Array {
    const out = new Uint8Array(this.parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of this.parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }
}

/** Splits a message into its fields (no schema needed); throws on truncated input. */
export function readFields(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (pos >= bytes.length) throw new Error('truncated varint');
      const byte = bytes[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) return result;
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > bytes.length) throw new Error('truncated field');
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  while (pos < bytes.length) {
    const key = Number(varint());
    const number = key >>> 3;
    const wire = key & 7;
    if (wire === 0) fields.push({ number, wire, value: varint() });
    else if (wire === 1) fields.push({ number, wire, value: take(8) });
    else if (wire === 2) fields.push({ number, wire, value: take(Number(varint())) });
    else if (wire === 5) fields.push({ number, wire, value: take(4) });
    else throw new Error(`unsupported wire type ${wire}`);
  }
  return fields;
}

export const fixedFloat = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
export const fixedDouble = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
/** The values of a packed repeated double field. */
export const packedDoubles = (b: Uint8Array) => Array.from({ length: b.length / 8 }, (_, i) => fixedDouble(b.subarray(i * 8, i * 8 + 8)));
