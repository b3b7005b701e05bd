/**
 * A bounds-checked big-endian reader for wire structures. Every read past the end throws
 * `DecodeError`; parsers catch it and report "malformed" to their caller, so no parser throws
 * anything else out of the DTLS layer.
 */

export class DecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DecodeError';
  }
}

export class Reader {
  private pos = 0;

  constructor(private readonly buf: Buffer) {}

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n > this.buf.length - this.pos) throw new DecodeError(`need ${n} bytes at ${this.pos}, ${this.buf.length - this.pos} left`);
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.need(3);
    const v = this.buf.readUIntBE(this.pos, 3);
    this.pos += 3;
    return v;
  }

  u48(): number {
    this.need(6);
    const v = this.buf.readUIntBE(this.pos, 6);
    this.pos += 6;
    return v;
  }

  /** `n` bytes as a view into the underlying buffer (copy before keeping it long). */
  bytes(n: number): Buffer {
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** opaque x<0..2^8-1> */
  vec8(): Buffer {
    return this.bytes(this.u8());
  }

  /** opaque x<0..2^16-1> */
  vec16(): Buffer {
    return this.bytes(this.u16());
  }

  /** opaque x<0..2^24-1> */
  vec24(): Buffer {
    return this.bytes(this.u24());
  }

  rest(): Buffer {
    return this.bytes(this.remaining);
  }

  /** Throws unless everything was consumed. */
  end(): void {
    if (this.pos !== this.buf.length) throw new DecodeError(`${this.buf.length - this.pos} trailing bytes`);
  }
}

/** Length-prefixed vectors for writers; throws RangeError when the content does not fit the prefix. */
export function vec8(b: Uint8Array): Buffer {
  if (b.length > 0xff) throw new RangeError('vector longer than 255 bytes');
  return Buffer.concat([Buffer.from([b.length]), b]);
}

export function vec16(b: Uint8Array): Buffer {
  if (b.length > 0xffff) throw new RangeError('vector longer than 65535 bytes');
  const h = Buffer.alloc(2);
  h.writeUInt16BE(b.length, 0);
  return Buffer.concat([h, b]);
}

export function vec24(b: Uint8Array): Buffer {
  if (b.length > 0xffffff) throw new RangeError('vector longer than 2^24-1 bytes');
  const h = Buffer.alloc(3);
  h.writeUIntBE(b.length, 0, 3);
  return Buffer.concat([h, b]);
}

export function u16(v: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v, 0);
  return b;
}

export function u24(v: number): Buffer {
  const b = Buffer.alloc(3);
  b.writeUIntBE(v, 0, 3);
  return b;
}
