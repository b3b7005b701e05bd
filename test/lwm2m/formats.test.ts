import { expect } from 'chai';
import { CodecError } from '../../src/lwm2m/errors.js';
import { codecByNameOrNumber, codecFor, compositeCodecFor, findCodec, hasCodec, nodeCodecs } from '../../src/lwm2m/formats/index.js';

describe('lwm2m/formats registry', () => {
  it('maps every LwM2M content format to a codec with the right media type', () => {
    const table: Array<[number, string, string]> = [
      [0, 'text', 'text/plain;charset=utf-8'],
      [42, 'opaque', 'application/octet-stream'],
      [60, 'cbor', 'application/cbor'],
      [110, 'senml-json', 'application/senml+json'],
      [112, 'senml-cbor', 'application/senml+cbor'],
      [1542, 'tlv-legacy', 'application/vnd.oma.lwm2m+tlv'],
      [1543, 'lwm2m-json-legacy', 'application/vnd.oma.lwm2m+json'],
      [11542, 'tlv', 'application/vnd.oma.lwm2m+tlv'],
      [11543, 'lwm2m-json', 'application/vnd.oma.lwm2m+json'],
      [11544, 'lwm2m-cbor', 'application/vnd.oma.lwm2m+cbor'],
    ];
    expect(nodeCodecs().map((c) => [c.contentFormat, c.name, c.mediaType])).to.deep.equal(table);
    expect(hasCodec(40)).to.equal(true);
    expect(hasCodec(41)).to.equal(false);
  });

  it('marks exactly SenML JSON, SenML CBOR and LwM2M CBOR as composite', () => {
    expect(nodeCodecs().filter((c) => c.composite).map((c) => c.contentFormat)).to.deep.equal([110, 112, 11544]);
    expect(compositeCodecFor(112).name).to.equal('senml-cbor');
    expect(() => compositeCodecFor(11542)).to.throw(CodecError, /cannot carry several objects/);
  });

  it('refuses unknown formats with CodecError and finds codecs by name or number', () => {
    expect(findCodec(9999)).to.equal(undefined);
    expect(() => codecFor(9999)).to.throw(CodecError, /no codec for Content-Format 9999/);
    expect(codecByNameOrNumber('TLV')?.contentFormat).to.equal(11542);
    expect(codecByNameOrNumber(' 112 ')?.name).to.equal('senml-cbor');
    expect(codecByNameOrNumber('xml')).to.equal(undefined);
  });
});
