/**
 * The bootstrap write itself — the PSK Security instance /0/1 and its Server instance /1/0 of
 * formats.md 3.5(d)/(e) — in every format that can carry an instance. Expected bytes are the
 * digest's verified vectors where it has them (TLV, SenML JSON/CBOR and LwM2M CBOR for /0/1, TLV
 * for /1/0); the others were derived by hand from the format rules of formats.md §3–§7 and are
 * annotated field by field.
 */
import { expect } from 'chai';
import { codecFor, ContentFormat } from '../../src/lwm2m/formats/index.js';
import { encodeTlv } from '../../src/lwm2m/formats/tlv.js';
import { nodeEquals, type LwM2MNode } from '../../src/lwm2m/node.js';
import type { Path } from '../../src/lwm2m/path.js';
import { hex, toHex } from '../support/arbitraries.js';
import { testModels } from '../support/models.js';
import { PSK_SECURITY_0_1 as security, PSK_SECURITY_0_1_TLV, PSK_SERVER_1_0 as server, PSK_SERVER_1_0_TLV } from '../support/fixtures.js';


const SEC: Path = [0, 1];
const SRV: Path = [1, 0];

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

interface Vector {
  format: number;
  path: Path;
  node: LwM2MNode;
  bytes: Uint8Array;
}

const vectors: Vector[] = [
  // formats.md 3.5(d): 90 bytes of resource TLVs (no instance wrapper, as Leshan sends it)
  {
    format: ContentFormat.TLV,
    path: SEC,
    node: security,
    bytes: PSK_SECURITY_0_1_TLV,
  },
  // formats.md 3.5(e) without the 08 00 0F wrapper: ssid 101, lifetime 86400 (4 bytes), storing, "U"
  { format: ContentFormat.TLV, path: SRV, node: server, bytes: PSK_SERVER_1_0_TLV },
  // formats.md 5.3, verified
  {
    format: ContentFormat.SENML_JSON,
    path: SEC,
    node: security,
    bytes: utf8(
      '[{"bn":"/0/1/","n":"0","vs":"coaps://lwm2m.example.com:5684"},{"n":"1","vb":false},{"n":"2","v":0},{"n":"3","vd":"dXJuOmltZWk6NDkwMTU0MjAzMjM3NTE4"},{"n":"4","vd":""},{"n":"5","vd":"AAECAwQFBgcICQoLDA0ODw"},{"n":"10","v":101}]',
    ),
  },
  // same record plan as the Security instance (bootstrap.md §3's pack writes /1/0 the same way)
  { format: ContentFormat.SENML_JSON, path: SRV, node: server, bytes: utf8('[{"bn":"/1/0/","n":"0","v":101},{"n":"1","v":86400},{"n":"6","vb":true},{"n":"7","vs":"U"}]') },
  // formats.md 5.3, verified, 124 bytes
  {
    format: ContentFormat.SENML_CBOR,
    path: SEC,
    node: security,
    bytes: hex(`87 a3 21 65 2f 30 2f 31 2f 00 61 30 03 78 1e 63 6f 61 70 73 3a 2f 2f 6c 77 6d 32 6d 2e 65 78 61
      6d 70 6c 65 2e 63 6f 6d 3a 35 36 38 34 a2 00 61 31 04 f4 a2 00 61 32 02 00 a2 00 61 33 08 58 18
      75 72 6e 3a 69 6d 65 69 3a 34 39 30 31 35 34 32 30 33 32 33 37 35 31 38 a2 00 61 34 08 40 a2 00
      61 35 08 50 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f a2 00 62 31 30 02 18 65`),
  },
  // 84 array(4); a3 {-2:"/1/0/", 0:"0", 2:101}; a2 {0:"1", 2:86400 (1a 00015180)};
  // a2 {0:"6", 4:true}; a2 {0:"7", 3:"U"}
  {
    format: ContentFormat.SENML_CBOR,
    path: SRV,
    node: server,
    bytes: hex('84 a3 21 65 2f 31 2f 30 2f 00 61 30 02 18 65  a2 00 61 31 02 1a 00 01 51 80  a2 00 61 36 04 f5  a2 00 61 37 03 61 55'),
  },
  // formats.md §6, verified, 92 bytes
  {
    format: ContentFormat.LWM2M_CBOR,
    path: SEC,
    node: security,
    bytes: hex(`a1 82 00 01 a7 00 78 1e 63 6f 61 70 73 3a 2f 2f 6c 77 6d 32 6d 2e 65 78 61 6d 70 6c 65 2e 63 6f
      6d 3a 35 36 38 34 01 f4 02 00 03 58 18 75 72 6e 3a 69 6d 65 69 3a 34 39 30 31 35 34 32 30 33 32
      33 37 35 31 38 04 40 05 50 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 0a 18 65`),
  },
  // {[1,0]: {0:101, 1:86400, 6:true, 7:"U"}}: a1 (map 1) 82 01 00 (key [1,0]) a4 (map 4) ...
  { format: ContentFormat.LWM2M_CBOR, path: SRV, node: server, bytes: hex('a1 82 01 00 a4 00 18 65 01 1a 00 01 51 80 06 f5 07 61 55') },
  // formats.md §7 shape; opaque as standard padded base64 in sv
  {
    format: ContentFormat.LWM2M_JSON,
    path: SEC,
    node: security,
    bytes: utf8(
      '{"bn":"/0/1/","e":[{"n":"0","sv":"coaps://lwm2m.example.com:5684"},{"n":"1","bv":false},{"n":"2","v":0},{"n":"3","sv":"dXJuOmltZWk6NDkwMTU0MjAzMjM3NTE4"},{"n":"4","sv":""},{"n":"5","sv":"AAECAwQFBgcICQoLDA0ODw=="},{"n":"10","v":101}]}',
    ),
  },
  { format: ContentFormat.LWM2M_JSON, path: SRV, node: server, bytes: utf8('{"bn":"/1/0/","e":[{"n":"0","v":101},{"n":"1","v":86400},{"n":"6","bv":true},{"n":"7","sv":"U"}]}') },
];

describe('bootstrap write of a Security and a Server instance, in every instance-capable format', () => {
  for (const v of vectors) {
    const codec = codecFor(v.format);
    const where = `${codec.name} ${v.path.join('/')}`;
    it(`${where}: encodes byte for byte`, () => {
      expect(toHex(codec.encode(v.path, v.node))).to.equal(toHex(v.bytes));
    });
    it(`${where}: decodes to the same node with the object model`, () => {
      expect(nodeEquals(codec.decode(v.path, v.bytes, testModels), v.node)).to.equal(true);
    });
  }

  it('TLV with the optional instance wrapper: 08 01 5A + 90 bytes, and 08 00 0F + 15 bytes', () => {
    const sec = encodeTlv(SEC, security, { wrapInstance: true });
    expect(sec.length).to.equal(93);
    expect(toHex(sec.subarray(0, 3))).to.equal('08015a');
    expect(toHex(encodeTlv(SRV, server, { wrapInstance: true }))).to.equal(toHex(hex('08 00 0F C1 00 65 C4 01 00 01 51 80 C1 06 01 C1 07 55')));
    expect(nodeEquals(codecFor(ContentFormat.TLV).decode(SEC, sec, testModels), security)).to.equal(true);
  });
});
