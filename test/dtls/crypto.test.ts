import { createCipheriv, createHmac } from 'node:crypto';
import { expect } from 'chai';
import fc from 'fast-check';
import {
  extendedMasterSecret, keyBlock, masterSecret, prf, pskPremasterSecret, sha256, verifyData,
} from '../../src/dtls/prf.js';
import { aeadOpen, aeadSeal, createProtection, pseudoHeader } from '../../src/dtls/protection.js';
import { parseDatagram, serializeRecord } from '../../src/dtls/record.js';
import {
  ALL_SUITES, TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8, TLS_PSK_WITH_AES_128_CBC_SHA256, TLS_PSK_WITH_AES_128_CCM_8, suiteById, suiteHex,
} from '../../src/dtls/suites.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const range = (from: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => from + i));

describe('dtls/prf and key schedule', () => {
  it('§9.1: the published P_SHA256 vector (100 bytes)', () => {
    const out = prf(hex('9bbe436ba940f017b17652849a71db35'), 'test label', hex('a0ba9f936cda311827a6f796ffd5198c'), 100);
    expect(out.toString('hex')).to.equal(
      'e3f229ba727be17b8d122620557cd453c2aab21d07c3d495329b52d4e61edb5a' +
        '6b301791e90d35c9c9a46b4e14baf9af0fa022f7077def17abfd3797c0564bab' +
        '4fbc91666e9def9b97fce34f796789baa48082d122ee42c5a72e5a5110fff701' +
        '87347b66',
    );
  });

  it('§9.2: the tinydtls PRF vector (60 bytes)', () => {
    const out = prf(Buffer.from('secret'), '!? some label, 123', Buffer.from('random'), 60);
    expect(out.toString('hex')).to.equal(
      'd02df7999ae4ed36b1ba07819e5da8b0be1319e79046e5ea05a3ecfffcd959a4' + '1a3148dae3841f8169d801d9441cd9ed83f78a4fa35c4a764d489032',
    );
  });

  it('a shorter output is a prefix of a longer one', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 40 }), fc.integer({ min: 1, max: 120 }), (s, seed, n) => {
        expect(prf(s, 'x', seed, n).equals(prf(s, 'x', seed, 130).subarray(0, n))).to.equal(true);
      }),
      { numRuns: 50 },
    );
  });

  describe('§9.5 end-to-end PSK + AES-128-CCM_8 example', () => {
    const psk = Buffer.from('secretPSK');
    const clientRandom = range(0x00, 32);
    const serverRandom = range(0x20, 32);
    const pms = pskPremasterSecret(psk);
    const ms = masterSecret(pms, clientRandom, serverRandom);
    const kb = keyBlock(ms, clientRandom, serverRandom, TLS_PSK_WITH_AES_128_CCM_8);

    it('premaster, master secret and the 40-byte key block', () => {
      expect(pms.toString('hex')).to.equal('0009' + '00'.repeat(9) + '0009' + '73656372657450534b');
      expect(ms.toString('hex')).to.equal(
        '03441a59e769d3f530fba3141d8158fdbc544e1124dacdcd7de93c37d5416f0dc68bde589731008aaf5c66858dc72fbd',
      );
      expect(kb.client.key.toString('hex')).to.equal('04379f48b525ab8b1216a048b400ef16');
      expect(kb.server.key.toString('hex')).to.equal('ae8cfba5b20119a4174ee6056934ef37');
      expect(kb.client.iv.toString('hex')).to.equal('e043d6a0');
      expect(kb.server.iv.toString('hex')).to.equal('48db3503');
      expect(kb.client.macKey.length).to.equal(0);
    });

    it('the client application-data record, byte for byte, and its decryption', () => {
      const plaintext = hex('48021a2b0102030405060708b27264');
      const clientWrite = createProtection(TLS_PSK_WITH_AES_128_CCM_8, kb.client);
      const fragment = clientWrite.encrypt(23, 0xfefd, 1, 1, plaintext);
      const record = serializeRecord({ type: 23, version: 0xfefd, epoch: 1, seq: 1, fragment });
      expect(record.toString('hex')).to.equal(
        '17fefd0001000000000001001f' + '0001000000000001' + 'c3b7022aae906ef82e165d9525e1ba' + 'baadc7b53f96b16f',
      );
      const [r] = parseDatagram(record).records;
      expect(clientWrite.decrypt(r!.type, r!.version, r!.epoch, r!.seq, r!.fragment)!.equals(plaintext)).to.equal(true);
      expect(pseudoHeader(1, 1, 23, 0xfefd, 15).toString('hex')).to.equal('0001000000000001' + '17' + 'fefd' + '000f');
    });

    it('Finished verify_data for both sides and the extended master secret', () => {
      const h = sha256(Buffer.from('example handshake transcript'));
      expect(h.toString('hex')).to.equal('55118052619f636f292700cdf1294b1ec0b6a0031b416d4b5f516f2c70183556');
      expect(verifyData(ms, 'client', h).toString('hex')).to.equal('0cce4be777d69978e21742c5');
      expect(verifyData(ms, 'server', h).toString('hex')).to.equal('c1bfb1d76769e5c258e4c7e5');
      expect(extendedMasterSecret(pms, h).toString('hex')).to.equal(
        '10696968611bac3b215a5010d7fa98afdc2d03f3c54cb29047e8f938c5acc8fccc214e9cfbdd2a1c6eec27b2240936b3',
      );
    });
  });

  it('the CBC-SHA256 key block is 96 bytes: 32-byte MAC keys, 16-byte keys, no fixed IV', () => {
    const kb = keyBlock(Buffer.alloc(48, 1), range(0, 32), range(32, 32), TLS_PSK_WITH_AES_128_CBC_SHA256);
    const all = prf(Buffer.alloc(48, 1), 'key expansion', Buffer.concat([range(32, 32), range(0, 32)]), 96);
    expect(Buffer.concat([kb.client.macKey, kb.server.macKey, kb.client.key, kb.server.key]).equals(all)).to.equal(true);
    expect(kb.client.iv.length).to.equal(0);
  });
});

describe('dtls/record protection', () => {
  it('§9.3: AES-CCM with 8-byte tag, RFC 3610 packet vector #1', () => {
    const key = hex('C0C1C2C3C4C5C6C7C8C9CACBCCCDCECF');
    const nonce = hex('00000003020100A0A1A2A3A4A5');
    const aad = hex('0001020304050607');
    const plain = range(0x08, 23);
    const sealed = aeadSeal('aes-128-ccm', key, nonce, aad, plain, 8);
    expect(sealed.toString('hex').toUpperCase()).to.equal('588C979A61C663D2F066D0C2C0F989806D5F6B61DAC384' + '17E8D12CFDF926E0');
    expect(aeadOpen('aes-128-ccm', key, nonce, aad, sealed, 8)!.equals(plain)).to.equal(true);
    sealed[3]! ^= 1;
    expect(aeadOpen('aes-128-ccm', key, nonce, aad, sealed, 8)).to.equal(undefined);
  });

  for (const suite of ALL_SUITES) {
    it(`${suite.name}: round trip, and any change to header or fragment is rejected (property)`, () => {
      const kb = keyBlock(Buffer.alloc(48, 9), range(0, 32), range(32, 32), suite);
      const p = createProtection(suite, kb.server);
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 2 ** 48 - 1 }), fc.integer({ min: 1, max: 65535 }), fc.nat(), fc.integer({ min: 1, max: 255 }),
          (pt, seq, epoch, at, x) => {
            const plaintext = Buffer.from(pt);
            const frag = p.encrypt(23, 0xfefd, epoch, seq, plaintext);
            expect(frag.length - plaintext.length).to.be.at.most(p.maxOverhead);
            expect(p.decrypt(23, 0xfefd, epoch, seq, frag)!.equals(plaintext)).to.equal(true);
            expect(p.decrypt(22, 0xfefd, epoch, seq, frag)).to.equal(undefined);
            expect(p.decrypt(23, 0xfefd, epoch, (seq + 1) % 2 ** 48, frag)).to.equal(undefined);
            const bad = Buffer.from(frag);
            const i = at % bad.length;
            // CBC: the IV is only malleable if the MAC still checks — it never does for a changed first block.
            bad[i]! ^= x;
            expect(p.decrypt(23, 0xfefd, epoch, seq, bad)).to.equal(undefined);
            expect(p.decrypt(23, 0xfefd, epoch, seq, frag.subarray(0, frag.length - 1))).to.equal(undefined);
          },
        ),
        { numRuns: 150 },
      );
    });
  }

  it('CBC-SHA256 matches an independent MAC-then-encrypt construction', () => {
    const keys = { macKey: Buffer.alloc(32, 0x11), key: Buffer.alloc(16, 0x22), iv: Buffer.alloc(0) };
    const plaintext = Buffer.from('hello, cbc');
    const frag = createProtection(TLS_PSK_WITH_AES_128_CBC_SHA256, keys).encrypt(23, 0xfefd, 1, 7, plaintext);
    // Rebuild independently with the IV the record carries.
    const iv = frag.subarray(0, 16);
    const macInput = Buffer.concat([hex('0001' + '000000000007' + '17' + 'fefd'), Buffer.from([0, plaintext.length]), plaintext]);
    const mac = createHmac('sha256', keys.macKey).update(macInput).digest();
    const padLen = 16 - ((plaintext.length + 32 + 1) % 16 || 16);
    const data = Buffer.concat([plaintext, mac, Buffer.alloc(padLen + 1, padLen)]);
    expect(data.length % 16).to.equal(0);
    const c = createCipheriv('aes-128-cbc', keys.key, iv);
    c.setAutoPadding(false);
    expect(Buffer.concat([iv, c.update(data), c.final()]).toString('hex')).to.equal(frag.toString('hex'));
  });

  it('CBC-SHA256 rejects bad padding with a valid MAC, and accepts maximal (255-byte) padding', () => {
    const keys = { macKey: Buffer.alloc(32, 3), key: Buffer.alloc(16, 4), iv: Buffer.alloc(0) };
    const p = createProtection(TLS_PSK_WITH_AES_128_CBC_SHA256, keys);
    const build = (plaintext: Buffer, padding: Buffer): Buffer => {
      const mac = createHmac('sha256', keys.macKey).update(pseudoHeader(1, 1, 23, 0xfefd, plaintext.length)).update(plaintext).digest();
      const iv = Buffer.alloc(16, 5);
      const c = createCipheriv('aes-128-cbc', keys.key, iv);
      c.setAutoPadding(false);
      return Buffer.concat([iv, c.update(Buffer.concat([plaintext, mac, padding])), c.final()]);
    };
    const pt = Buffer.alloc(15, 0x61); // 15 + 32 + 1 = 48
    expect(p.decrypt(23, 0xfefd, 1, 1, build(pt, Buffer.from([0])))!.equals(pt)).to.equal(true);
    const pt16 = Buffer.alloc(16, 0x62); // 16 + 32 + 256 = 304
    expect(p.decrypt(23, 0xfefd, 1, 1, build(pt16, Buffer.alloc(256, 255)))!.equals(pt16)).to.equal(true);
    const pt31 = Buffer.alloc(31, 0x63); // 31 + 32 + 17 = 80
    expect(p.decrypt(23, 0xfefd, 1, 1, build(pt31, Buffer.alloc(17, 16)))!.equals(pt31)).to.equal(true);
    const wrong = Buffer.alloc(17, 16);
    wrong[3] = 15; // one padding byte off, MAC still right for pt31
    expect(p.decrypt(23, 0xfefd, 1, 1, build(pt31, wrong))).to.equal(undefined);
    expect(p.decrypt(23, 0xfefd, 1, 1, build(pt31, Buffer.alloc(17, 200)))).to.equal(undefined); // padding longer than the record allows
    expect(p.decrypt(23, 0xfefd, 1, 1, Buffer.alloc(16 + 32))).to.equal(undefined); // too short for MAC + padding
    expect(p.decrypt(23, 0xfefd, 1, 1, Buffer.alloc(16 + 50))).to.equal(undefined); // not whole blocks
  });

  it('suite lookup and names', () => {
    expect(suiteById(0xc0a8)).to.equal(TLS_PSK_WITH_AES_128_CCM_8);
    expect(suiteById(0xc0ae)).to.equal(TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8);
    expect(suiteById(0xc0ae)!.keyExchange).to.equal('ecdhe_ecdsa');
    expect(suiteById(0xc023)!.macKeyLength).to.equal(32);
    expect(suiteById(0x1301)).to.equal(undefined);
    expect(suiteHex(0xae)).to.equal('0x00AE');
  });
});
