import { expect } from 'chai';
import fc from 'fast-check';
import { CodecError, type CodecErrorReason } from '../../src/lwm2m/errors.js';
import {
  type BootstrapDiscover,
  type Link,
  type LinkAttributes,
  type LinkParam,
  type RegisteredObject,
  findBootstrapAccount,
  formatLinkFormat,
  formatRegisterLinks,
  linkAttributes,
  linkFormatCodec,
  linkParam,
  lwm2mPathOf,
  parseBootstrapDiscover,
  parseLinkFormat,
  parseRegisterLinks,
} from '../../src/lwm2m/linkformat.js';
import { codecError } from '../support/expect.js';

/** Runs `fn`, expects a CodecError, returns it. */
function expectError(fn: () => unknown, reason: CodecErrorReason, offset?: number): CodecError {
  const e = codecError(fn);
  expect(e.format).to.equal('link-format');
  expect(e.reason, e.message).to.equal(reason);
  if (offset !== undefined) expect(e.offset, e.message).to.equal(offset);
  return e;
}

/** Shorthand builders for expected links. */
const L = (uri: string, ...params: LinkParam[]): Link => ({ uri, params });
const P = (name: string, value?: string, quoted = false): LinkParam =>
  value === undefined ? { name } : quoted ? { name, value, quoted: true } : { name, value };
const Q = (name: string, value: string): LinkParam => P(name, value, true);

const objs = (entries: Array<[number, RegisteredObject]>): Map<number, RegisteredObject> => new Map(entries);
const inst = (...ids: number[]): RegisteredObject => ({ instances: ids });

/** Drops the `quoted` hint: what must survive a format → parse round trip. */
function meaning(links: readonly Link[]): unknown {
  return links.map((l) => ({
    uri: l.uri,
    bare: l.bare === true,
    params: l.params.map((p) => (p.value === undefined ? { name: p.name } : { name: p.name, value: p.value })),
  }));
}

describe('lwm2m/linkformat', () => {
  describe('generic parser', () => {
    it('parses the formats.md §8 root-link examples with quoted and unquoted ct', () => {
      expect(parseLinkFormat('</>;ct=110')).to.deep.equal([L('/', P('ct', '110'))]);
      expect(parseLinkFormat('</>;ct="60 110 112 11542 11543"')).to.deep.equal([L('/', Q('ct', '60 110 112 11542 11543'))]);
      expect(parseLinkFormat('</>;rt="oma.lwm2m";ct="60 110 112 11542"')).to.deep.equal([
        L('/', Q('rt', 'oma.lwm2m'), Q('ct', '60 110 112 11542')),
      ]);
    });

    it('parses the Register example with an alternate root path', () => {
      expect(parseLinkFormat('</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>')).to.deep.equal([
        L('/lwm2m', Q('rt', 'oma.lwm2m')),
        L('/lwm2m/1/0'),
        L('/lwm2m/3/0'),
      ]);
    });

    it('parses the Discover /3/0/7 example (formats.md §8, registration.md §7.2) keeping parameter order', () => {
      expect(parseLinkFormat('</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2,</3/0/7/0>,</3/0/7/1>;lt=45')).to.deep.equal([
        L('/3/0/7', P('dim', '2'), P('pmin', '10'), P('pmax', '60'), P('gt', '50'), P('lt', '42.2')),
        L('/3/0/7/0'),
        L('/3/0/7/1', P('lt', '45')),
      ]);
    });

    it('parses the Bootstrap-Discover spec example with uri and ssid', () => {
      expect(
        parseLinkFormat('</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://server_1.example.com",</0/1>,</1/0>;ssid=101,</3/0>,</4>,</5>'),
      ).to.deep.equal([
        L('/', P('lwm2m', '1.1')),
        L('/0/0', P('ssid', '101'), Q('uri', 'coaps://server_1.example.com')),
        L('/0/1'),
        L('/1/0', P('ssid', '101')),
        L('/3/0'),
        L('/4'),
        L('/5'),
      ]);
    });

    it('exposes the LwM2M 1.0 bare header as a first link with uri "" and bare: true', () => {
      expect(parseLinkFormat('lwm2m="1.0",</0/0>;ssid=101,</0/1>')).to.deep.equal([
        { uri: '', params: [Q('lwm2m', '1.0')], bare: true },
        L('/0/0', P('ssid', '101')),
        L('/0/1'),
      ]);
      // Several header parameters, unquoted; and `<>` is an ordinary (non-bare) empty target.
      expect(parseLinkFormat('lwm2m=1.0;x=1,<>')).to.deep.equal([{ uri: '', params: [P('lwm2m', '1.0'), P('x', '1')], bare: true }, L('')]);
    });

    it('keeps flag parameters without a value and commas/semicolons inside quoted values', () => {
      expect(parseLinkFormat('</3/0>;obs;uri="coap://h:1/a,b;c";ct="60 110"')).to.deep.equal([
        L('/3/0', P('obs'), Q('uri', 'coap://h:1/a,b;c'), Q('ct', '60 110')),
      ]);
    });

    it('resolves quoted-string escapes', () => {
      expect(parseLinkFormat('</1>;title="say \\"hi\\", back\\\\slash \\x"')).to.deep.equal([L('/1', Q('title', 'say "hi", back\\slash x'))]);
      expect(parseLinkFormat('</1>;a=""')).to.deep.equal([L('/1', Q('a', ''))]);
    });

    it('returns [] for an empty or blank payload', () => {
      expect(parseLinkFormat('')).to.deep.equal([]);
      expect(parseLinkFormat(new Uint8Array(0))).to.deep.equal([]);
      expect(parseLinkFormat(' \r\n\t ')).to.deep.equal([]);
      expect(parseLinkFormat(',,')).to.deep.equal([]);
    });

    it('accepts bytes (UTF-8) as well as text', () => {
      const bytes = new TextEncoder().encode('</1/0>;title="Zürich",</3/0>');
      expect(parseLinkFormat(bytes)).to.deep.equal([L('/1/0', Q('title', 'Zürich')), L('/3/0')]);
    });

    describe('leniency', () => {
      it('tolerates whitespace around links, parameters, commas, semicolons and "="', () => {
        expect(parseLinkFormat('  </>;ct="110 112 60", </1/0>,\r\n\t</3/0> ; ssid = 1 ;obs , </5>  ')).to.deep.equal([
          L('/', Q('ct', '110 112 60')),
          L('/1/0'),
          L('/3/0', P('ssid', '1'), P('obs')),
          L('/5'),
        ]);
      });

      it('tolerates leading, doubled and trailing commas and empty parameters', () => {
        expect(parseLinkFormat(',</1/0>,,</3/0>,')).to.deep.equal([L('/1/0'), L('/3/0')]);
        expect(parseLinkFormat('</1/0>,,,')).to.deep.equal([L('/1/0')]);
        expect(parseLinkFormat('</1/0>;;ssid=1;;,</3/0>;')).to.deep.equal([L('/1/0', P('ssid', '1')), L('/3/0')]);
      });

      it('accepts quoted and unquoted forms of the same value', () => {
        expect(parseLinkFormat('</>;rt=oma.lwm2m;lwm2m="1.1";ssid="101"')).to.deep.equal([
          L('/', P('rt', 'oma.lwm2m'), Q('lwm2m', '1.1'), Q('ssid', '101')),
        ]);
      });

      it('keeps a trailing slash in the target (the LwM2M layer drops it)', () => {
        expect(parseLinkFormat('</0/1/>,</1/0/>')).to.deep.equal([L('/0/1/'), L('/1/0/')]);
      });

      it('lower-cases parameter names (case-insensitive per RFC 8288)', () => {
        expect(parseLinkFormat('</0/0>;SSID=1;Uri="x"')).to.deep.equal([L('/0/0', P('ssid', '1'), Q('uri', 'x'))]);
      });

      it('accepts absolute and non-LwM2M targets', () => {
        expect(parseLinkFormat('<coap://h:5683/a?b=c#d>,</.well-known/core>;rt="x y"')).to.deep.equal([
          L('coap://h:5683/a?b=c#d'),
          L('/.well-known/core', Q('rt', 'x y')),
        ]);
      });
    });

    describe('malformed input', () => {
      const cases: Array<[string, string, CodecErrorReason, number]> = [
        ['unterminated <', '</1/0', 'truncated', 0],
        ['unterminated < after a good link', '</1/0>,</3/0', 'truncated', 7],
        ['unterminated quote', '</1>;uri="coap://x', 'truncated', 9],
        ['quote ending in a lone backslash', '</1>;a="x\\', 'truncated', 7],
        ['"=" at the end', '</1>;a=', 'truncated', 7],
        ['missing comma between links', '</1/0></3/0>', 'invalid', 6],
        ['space instead of comma', '</1/0> </3/0>', 'invalid', 7],
        ['garbage after a link', '</1/0>x', 'invalid', 6],
        ['garbage element between links', '</1/0>,x,</3/0>', 'invalid', 7],
        ['garbage after a quoted value', '</1>;a="b"c', 'invalid', 10],
        ['"<" inside a target', '<</1/0>', 'invalid', 1],
        ['space inside a target', '</1 /0>', 'invalid', 3],
        ['quote inside a target', '</1"/0>', 'invalid', 3],
        ['control character inside a target', '</1\u0000>', 'invalid', 3],
        ['parameter without a name', '</1>;=5', 'invalid', 5],
        ['empty unquoted value', '</1>;a=,</2>', 'invalid', 7],
        ['only semicolons', ';;;;', 'invalid', 0],
        ['stray ">"', '>', 'invalid', 0],
        ['bare flag header', 'lwm2m,</0/0>', 'invalid', 0],
        ['bare header after a link', '</0/0>,lwm2m="1.0"', 'invalid', 7],
        ['unquoted value with a quote in it', '</1>;a=b"c"', 'invalid', 8],
      ];
      for (const [what, text, reason, offset] of cases) {
        it(`${what}: ${JSON.stringify(text)} → ${reason} at ${offset}`, () => {
          expectError(() => parseLinkFormat(text), reason, offset);
        });
      }

      it('refuses invalid UTF-8', () => {
        expectError(() => parseLinkFormat(Uint8Array.of(0x3c, 0x2f, 0xff, 0x3e)), 'invalid');
      });

      it('refuses payloads beyond the size, link and parameter limits', () => {
        expectError(() => parseLinkFormat('</1>,'.repeat(13108)), 'too_large', 65536);
        expectError(() => parseLinkFormat(new Uint8Array(65537).fill(0x2c)), 'too_large');
        expect(parseLinkFormat(',</1>,</2>', { maxLinks: 2 })).to.have.length(2);
        expectError(() => parseLinkFormat('</1>,</2>,</3>', { maxLinks: 2 }), 'too_large', 10);
        expectError(() => parseLinkFormat('</1>;a;b;c', { maxParams: 2 }), 'too_large', 9);
        expect(parseLinkFormat('</1>' + ';a'.repeat(64))[0]!.params).to.have.length(64);
        expectError(() => parseLinkFormat('</1>' + ';a'.repeat(65)), 'too_large');
      });

      it('names the fault in the message', () => {
        expect(codecError(() => parseLinkFormat('</1/0')).message).to.match(/unterminated link target/);
        expect(codecError(() => parseLinkFormat('</1>;a="x')).message).to.match(/unterminated quoted string/);
        expect(codecError(() => parseLinkFormat('</1/0>x')).message).to.match(/'x' after a link/);
      });
    });

    describe('pathological input terminates with a bounded result', () => {
      const big = { maxLength: 1 << 20, maxLinks: 1 << 20 };
      it('100k of "<"', () => expectError(() => parseLinkFormat('<'.repeat(100_000), big), 'invalid', 1));
      it('100k of ";"', () => expectError(() => parseLinkFormat(';'.repeat(100_000), big), 'invalid', 0));
      it('a link followed by 100k of ";" is one link without parameters', () => {
        expect(parseLinkFormat('</1>' + ';'.repeat(100_000), big)).to.deep.equal([L('/1')]);
      });
      it('100k of "," is empty', () => expect(parseLinkFormat(','.repeat(100_000), big)).to.deep.equal([]));
      it('a long unterminated quote full of escapes', () => {
        expectError(() => parseLinkFormat('</1>;a="' + '\\"'.repeat(100_000), big), 'truncated', 7);
      });
      it('a long unterminated target', () => expectError(() => parseLinkFormat('</' + '1/'.repeat(100_000), big), 'truncated', 0));
      it('many tiny links', () => expect(parseLinkFormat('<>,'.repeat(100_000), big)).to.have.length(100_000));
      it('oversized input is refused before scanning', () => expectError(() => parseLinkFormat('<'.repeat(10_000_000)), 'too_large'));
    });
  });

  describe('generic formatter', () => {
    it('writes each kind of parameter: flags, numbers unquoted, conventional quotes, quoting when needed', () => {
      const text = formatLinkFormat([
        L('/', P('rt', 'oma.lwm2m'), P('ct', '60 110'), P('lwm2m', '1.1')),
        L('/0/0', P('ssid', '101'), P('uri', 'coaps://s.example.com:5684')),
        L('/1', P('ver', '1.1')),
        L('/3/0/7', P('dim', '2'), P('pmin', '10'), P('lt', '-42.2'), P('obs')),
        L('/9', P('title', 'x'), P('a', 'b,c'), P('b', 'x;y'), P('c', 'say "hi"'), P('d', 'back\\slash'), P('e', ''), P('f', 'Zürich'), P('g', 'a b')),
        L('/5', Q('ssid', '7')),
      ]);
      expect(text).to.equal(
        '</>;rt="oma.lwm2m";ct="60 110";lwm2m=1.1,' +
          '</0/0>;ssid=101;uri="coaps://s.example.com:5684",' +
          '</1>;ver=1.1,' +
          '</3/0/7>;dim=2;pmin=10;lt=-42.2;obs,' +
          '</9>;title="x";a="b,c";b="x;y";c="say \\"hi\\"";d="back\\\\slash";e="";f="Zürich";g="a b",' +
          '</5>;ssid="7"',
      );
    });

    it('reproduces the Bootstrap-Discover spec example byte for byte', () => {
      const links = [
        L('/', P('lwm2m', '1.1')),
        L('/0/0', P('ssid', '101'), P('uri', 'coaps://server_1.example.com')),
        L('/0/1'),
        L('/1/0', P('ssid', '101')),
        L('/3/0'),
        L('/4'),
        L('/5'),
      ];
      expect(formatLinkFormat(links)).to.equal('</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://server_1.example.com",</0/1>,</1/0>;ssid=101,</3/0>,</4>,</5>');
    });

    it('reproduces the Discover /3 example byte for byte', () => {
      const links = [
        L('/3', P('pmin', '10')),
        L('/3/0', P('pmax', '60')),
        L('/3/0/1'),
        L('/3/0/2'),
        L('/3/0/3'),
        L('/3/0/4'),
        L('/3/0/6', P('dim', '2')),
        L('/3/0/7', P('dim', '2'), P('gt', '50'), P('lt', '42.2')),
        L('/3/0/8', P('dim', '2')),
        L('/3/0/11'),
        L('/3/0/16'),
      ];
      expect(formatLinkFormat(links)).to.equal(
        '</3>;pmin=10,</3/0>;pmax=60,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/4>,</3/0/6>;dim=2,</3/0/7>;dim=2;gt=50;lt=42.2,</3/0/8>;dim=2,</3/0/11>,</3/0/16>',
      );
    });

    it('writes the 1.0 bare header without <> and keeps its quotes', () => {
      const links: Link[] = [{ uri: '', params: [Q('lwm2m', '1.0')], bare: true }, L('/0/0', P('ssid', '101')), L('/0/1')];
      expect(formatLinkFormat(links)).to.equal('lwm2m="1.0",</0/0>;ssid=101,</0/1>');
      expect(formatLinkFormat([])).to.equal('');
      expect(formatLinkFormat([L('')])).to.equal('<>');
    });

    it('refuses what it cannot write', () => {
      expectError(() => formatLinkFormat([L('/a>b')]), 'invalid');
      expectError(() => formatLinkFormat([L('/a b')]), 'invalid');
      expectError(() => formatLinkFormat([L('/1', P(''))]), 'invalid');
      expectError(() => formatLinkFormat([L('/1', P('a=b', '1'))]), 'invalid');
      expectError(() => formatLinkFormat([L('/1'), { uri: '', params: [P('a', '1')], bare: true }]), 'invalid');
      expectError(() => formatLinkFormat([{ uri: '', params: [P('a')], bare: true }]), 'invalid');
      expectError(() => formatLinkFormat([{ uri: '', params: [], bare: true }]), 'invalid');
    });

    it('is exposed as the Content-Format 40 registry entry', () => {
      expect(linkFormatCodec.contentFormat).to.equal(40);
      expect(linkFormatCodec.name).to.equal('link-format');
      expect(linkFormatCodec.mediaType).to.equal('application/link-format');
      expect(linkFormatCodec.format(linkFormatCodec.parse('</1/0>;ssid=1'))).to.equal('</1/0>;ssid=1');
    });
  });

  describe('round trip (property)', () => {
    const uriChar = fc.constantFrom(...'/0123456789abcxyz-._~:?#[]@!$&\'()*+,;=%'.split(''), 'é');
    const uri = fc.string({ unit: uriChar, maxLength: 20 });
    const name = fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789!#$&+-.^_`|~*'.split('')), minLength: 1, maxLength: 8 });
    const awkward = fc.oneof(
      fc.string({ unit: fc.constantFrom(...'a1.-,;" \\<>=/:\t'.split(''), '€', '😀', '\u0000'), maxLength: 16 }),
      fc.string({ unit: 'grapheme', maxLength: 12 }),
      fc.constantFrom('oma.lwm2m', '60 110 112', 'coaps://h:5684/a,b', '1.1', '101', ''),
    );
    const param: fc.Arbitrary<LinkParam> = fc.record({ name, value: fc.option(awkward, { nil: undefined }), quoted: fc.boolean() }).map((p) =>
      p.value === undefined ? { name: p.name } : p.quoted ? { name: p.name, value: p.value, quoted: true } : { name: p.name, value: p.value },
    );
    const link: fc.Arbitrary<Link> = fc.record({ uri, params: fc.array(param, { maxLength: 5 }) });
    const header: fc.Arbitrary<Link> = fc
      .tuple(name, awkward, fc.array(param, { maxLength: 3 }))
      .map(([n, v, rest]) => ({ uri: '', params: [{ name: n, value: v }, ...rest], bare: true }));
    const links = fc.tuple(fc.option(header, { nil: undefined }), fc.array(link, { maxLength: 8 })).map(([h, ls]) => (h ? [h, ...ls] : ls));

    it('format → parse gives the same links, and formatting is a fixed point', () => {
      fc.assert(
        fc.property(links, (ls) => {
          const text = formatLinkFormat(ls);
          const back = parseLinkFormat(text);
          expect(meaning(back)).to.deep.equal(meaning(ls));
          expect(formatLinkFormat(back)).to.equal(text);
        }),
        { numRuns: 300 },
      );
    });

    it('formatRegisterLinks → parseRegisterLinks gives the same objects', () => {
      const ids = fc.uniqueArray(fc.integer({ min: 0, max: 65534 }), { maxLength: 4 }).map((a) => a.sort((x, y) => x - y));
      const version = fc.option(fc.tuple(fc.nat(99), fc.nat(99)).map(([a, b]) => `${a}.${b}`), { nil: undefined });
      const objects = fc
        .uniqueArray(fc.tuple(fc.integer({ min: 0, max: 65534 }), version, ids), { selector: (t) => t[0], maxLength: 8 })
        .map((entries) => new Map(entries.map(([oid, ver, is]): [number, RegisteredObject] => [oid, ver === undefined ? { instances: is } : { version: ver, instances: is }])));
      const root = fc.constantFrom('/', '/lwm2m', '/a/b-c');
      const cts = fc.option(fc.uniqueArray(fc.integer({ min: 0, max: 65535 }), { minLength: 1, maxLength: 5 }), { nil: undefined });
      fc.assert(
        fc.property(root, cts, objects, (rootPath, contentFormats, objects) => {
          const text = formatRegisterLinks(contentFormats === undefined ? { rootPath, objects } : { rootPath, contentFormats, objects });
          const back = parseRegisterLinks(text);
          expect(back.rootPath).to.equal(rootPath);
          expect(back.contentFormats).to.deep.equal(contentFormats);
          expect(back.objects).to.deep.equal(objects);
        }),
        { numRuns: 200 },
      );
    });
  });

  describe('fuzz (property)', () => {
    const alphabet = fc.constantFrom(...'<>/;,="\\ 0123456789abrtsuvlmwct.:-\n'.split(''), 'ü', '\u0000');
    const run = (text: string | Uint8Array): void => {
      let links: Link[];
      try {
        links = parseLinkFormat(text);
      } catch (e) {
        expect(e).to.be.instanceOf(CodecError);
        return;
      }
      // Whatever is accepted survives formatting and parsing again.
      expect(meaning(parseLinkFormat(formatLinkFormat(links)))).to.deep.equal(meaning(links));
      for (const fn of [() => parseRegisterLinks(text), () => parseBootstrapDiscover(text), () => links.map(linkAttributes), () => links.map((l) => lwm2mPathOf(l.uri))]) {
        try {
          fn();
        } catch (e) {
          expect(e).to.be.instanceOf(CodecError);
        }
      }
    };

    it('random syntax-heavy strings only succeed or throw CodecError', () => {
      fc.assert(fc.property(fc.string({ unit: alphabet, maxLength: 60 }), run), { numRuns: 300 });
    });

    it('random bytes only succeed or throw CodecError', () => {
      fc.assert(fc.property(fc.uint8Array({ maxLength: 60 }), run), { numRuns: 300 });
    });

    it('mutations of valid payloads only succeed or throw CodecError', () => {
      const seeds = [
        '</>;rt="oma.lwm2m";ct="60 110 112 1542 1543 11542 11543",</1/0>,</2>,</3/0>,</3442/0>',
        'lwm2m="1.0",</0/0>;ssid=101,</0/1>,</1/0>;ssid=101,</3/0>,</5>,</4>',
        '</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2,</3/0/7/0>,</3/0/7/1>;lt=45',
      ];
      const mutated = fc
        .tuple(fc.constantFrom(...seeds), fc.array(fc.tuple(fc.nat(), fc.nat(2), alphabet), { minLength: 1, maxLength: 4 }))
        .map(([seed, edits]) => {
          let s = seed;
          for (const [at, op, ch] of edits) {
            const i = at % (s.length + 1);
            s = op === 0 ? s.slice(0, i) + s.slice(i + 1) : op === 1 ? s.slice(0, i) + ch + s.slice(i) : s.slice(0, i) + ch + s.slice(i + 1);
          }
          return s;
        });
      fc.assert(fc.property(mutated, run), { numRuns: 300 });
    });
  });

  describe('Register payload (parseRegisterLinks)', () => {
    it('registration.md §2.2 wild example: Leshan client', () => {
      expect(parseRegisterLinks('</>;rt="oma.lwm2m";ct="60 110 112 1542 1543 11542 11543",</1/0>,</2>,</3/0>,</3442/0>')).to.deep.equal({
        rootPath: '/',
        contentFormats: [60, 110, 112, 1542, 1543, 11542, 11543],
        objects: objs([
          [1, inst(0)],
          [2, inst()],
          [3, inst(0)],
          [3442, inst(0)],
        ]),
      });
    });

    it('registration.md §2.2 wild example: Wakaama-style, single unquoted ct', () => {
      expect(parseRegisterLinks('</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>')).to.deep.equal({
        rootPath: '/',
        contentFormats: [110],
        objects: objs([
          [1, inst(0)],
          [3, inst(0)],
          [4, inst(0)],
        ]),
      });
    });

    it('registration.md §2.2 wild example: spec 1.0 without root link', () => {
      const r = parseRegisterLinks('</1/0>,</1/1>,</2/0>,</2/1>,</2/2>,</2/3>,</2/4>,</3/0>,</4/0>,</5>');
      expect(r).to.deep.equal({
        rootPath: '/',
        objects: objs([
          [1, inst(0, 1)],
          [2, inst(0, 1, 2, 3, 4)],
          [3, inst(0)],
          [4, inst(0)],
          [5, inst()],
        ]),
      });
      expect('contentFormats' in r).to.equal(false);
    });

    it('registration.md §2.2 wild example: spec 1.2 with spaces after commas and ct without rt', () => {
      expect(parseRegisterLinks('</>;ct="110 112 60", </1/0>,</1/1>,</2/0>,</3/0>,</4/0>,</5>')).to.deep.equal({
        rootPath: '/',
        contentFormats: [110, 112, 60],
        objects: objs([
          [1, inst(0, 1)],
          [2, inst(0)],
          [3, inst(0)],
          [4, inst(0)],
          [5, inst()],
        ]),
      });
    });

    it('formats.md §8 examples: </>;ct=110 and </1>;ver=1.1', () => {
      expect(parseRegisterLinks('</>;ct=110,</1/0>,</3/0>')).to.deep.equal({
        rootPath: '/',
        contentFormats: [110],
        objects: objs([
          [1, inst(0)],
          [3, inst(0)],
        ]),
      });
      expect(parseRegisterLinks('</1>;ver=1.1,</1/0>')).to.deep.equal({ rootPath: '/', objects: objs([[1, { version: '1.1', instances: [0] }]]) });
    });

    it('object versions on object links and (tolerated) on instance links', () => {
      expect(parseRegisterLinks('</1>;ver=1.0,</1/0>,</1/1>,</3/0>,</44/0>;ver=2.2')).to.deep.equal({
        rootPath: '/',
        objects: objs([
          [1, { version: '1.0', instances: [0, 1] }],
          [3, inst(0)],
          [44, { version: '2.2', instances: [0] }],
        ]),
      });
      // The object link's version wins over an instance link's, whatever the order.
      expect(parseRegisterLinks('</7/0>;ver=3.0,</7>;ver="1.2"').objects.get(7)).to.deep.equal({ version: '1.2', instances: [0] });
    });

    it('alternate root path: paths are relative to it, links outside are ignored', () => {
      expect(parseRegisterLinks('</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>')).to.deep.equal({
        rootPath: '/lwm2m',
        objects: objs([
          [1, inst(0)],
          [3, inst(0)],
        ]),
      });
      expect(parseRegisterLinks('</3/0>,</my/lwm2m/>;rt="oma.lwm2m";ct="110 112",</my/lwm2m/1/0/>,</my/lwm2m/5>,</my/lwm2mx/4/0>')).to.deep.equal({
        rootPath: '/my/lwm2m',
        contentFormats: [110, 112],
        objects: objs([
          [1, inst(0)],
          [5, inst()],
        ]),
      });
    });

    it('merges objects listed both ways, drops duplicate instances, sorts instances', () => {
      expect(parseRegisterLinks('</3/2>,</3>,</3/0>,</3/2>,</1/0>,</1>').objects).to.deep.equal(
        objs([
          [3, inst(0, 2)],
          [1, inst(0)],
        ]),
      );
    });

    it('ignores unknown parameters, non-LwM2M links and trailing slashes; keeps unknown objects', () => {
      expect(
        parseRegisterLinks(
          '</>;rt="oma.lwm2m core.rd";foo=bar;obs,</.well-known/core>,<coap://h/1/0>,</3/a>,</x/1>,</1/0/>;if="x";sz=3,</32769/0>,</3/0>',
        ),
      ).to.deep.equal({
        rootPath: '/',
        objects: objs([
          [1, inst(0)],
          [32769, inst(0)],
          [3, inst(0)],
        ]),
      });
    });

    it('reports Security (0) and OSCORE (21) as given', () => {
      expect([...parseRegisterLinks('</0/0>,</1/0>,</21/0>').objects.keys()]).to.deep.equal([0, 1, 21]);
    });

    it('gives an empty object list for an empty payload (the server decides 4.00 / 4.09)', () => {
      expect(parseRegisterLinks('')).to.deep.equal({ rootPath: '/', objects: new Map() });
    });

    it('refuses broken paths, roots and values', () => {
      expectError(() => parseRegisterLinks('</1/0>,</65535/0>'), 'bad_path');
      expectError(() => parseRegisterLinks('</1/0>,</3/100000>'), 'bad_path');
      expectError(() => parseRegisterLinks('</3/0/1>'), 'bad_path');
      expectError(() => parseRegisterLinks('</lwm2m/1>;rt="oma.lwm2m",</lwm2m/1/3/0>'), 'bad_path');
      expectError(() => parseRegisterLinks('<lwm2m>;rt="oma.lwm2m"'), 'bad_path');
      expectError(() => parseRegisterLinks('</a//b>;rt="oma.lwm2m"'), 'bad_path');
      expectError(() => parseRegisterLinks('</>;rt="oma.lwm2m",</lwm2m>;rt="oma.lwm2m"'), 'duplicate');
      expectError(() => parseRegisterLinks('</>;ct="60 abc",</1/0>'), 'invalid');
      expectError(() => parseRegisterLinks('</>;ct="70000"'), 'invalid');
      expectError(() => parseRegisterLinks('</>;ct=""'), 'invalid');
      expectError(() => parseRegisterLinks('</1>;ver=x,</1/0>'), 'invalid');
      expectError(() => parseRegisterLinks('</1/0>;ver=1'), 'invalid');
      expectError(() => parseRegisterLinks('</1/0'), 'truncated', 0);
      expect(codecError(() => parseRegisterLinks('</1/0>,</3/0/1>')).path).to.equal('/3/0/1');
    });
  });

  describe('formatRegisterLinks', () => {
    it('reproduces the Leshan client Register payload', () => {
      const objects = new Map([
        [1, inst(0)],
        [2, inst()],
        [3, inst(0)],
        [3442, inst(0)],
      ]);
      expect(formatRegisterLinks({ contentFormats: [60, 110, 112, 1542, 1543, 11542, 11543], objects })).to.equal(
        '</>;rt="oma.lwm2m";ct="60 110 112 1542 1543 11542 11543",</1/0>,</2>,</3/0>,</3442/0>',
      );
    });

    it('writes a single ct unquoted, versions on object links, empty objects as </o>', () => {
      expect(formatRegisterLinks({ contentFormats: [110], objects: new Map([[1, inst(0)], [3, inst(0)], [4, inst(0)]]) })).to.equal(
        '</>;rt="oma.lwm2m";ct=110,</1/0>,</3/0>,</4/0>',
      );
      expect(
        formatRegisterLinks({
          objects: [
            [1, { version: '1.1', instances: [0, 1] }],
            [3, inst(0)],
            [5, inst()],
            [55, { version: '1.9', instances: [] }],
          ],
        }),
      ).to.equal('</1>;ver=1.1,</1/0>,</1/1>,</3/0>,</5>,</55>;ver=1.9');
    });

    it('writes an alternate root path', () => {
      expect(formatRegisterLinks({ rootPath: '/lwm2m', objects: new Map([[1, inst(0)], [3, inst(0)]]) })).to.equal(
        '</lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,</lwm2m/3/0>',
      );
    });

    it('refuses what a client could not send', () => {
      expectError(() => formatRegisterLinks({ rootPath: '/lwm2m/1', objects: [] }), 'bad_path');
      expectError(() => formatRegisterLinks({ objects: [[65535, inst(0)]] }), 'bad_path');
      expectError(() => formatRegisterLinks({ objects: [[1, inst(-1)]] }), 'bad_path');
      expectError(() => formatRegisterLinks({ contentFormats: [1.5], objects: [] }), 'invalid');
      expectError(() => formatRegisterLinks({ objects: [[1, { version: 'v1', instances: [] }]] }), 'invalid');
    });
  });

  describe('Bootstrap-Discover (parseBootstrapDiscover, findBootstrapAccount)', () => {
    const account = (r: BootstrapDiscover): number | undefined => findBootstrapAccount(r)?.path[1];

    it('bootstrap.md §5.1 example 1 (1.1)', () => {
      const r = parseBootstrapDiscover('</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://server_1.example.com",</0/1>,</1/0>;ssid=101,</3/0>,</4>,</5>');
      expect(r).to.deep.equal({
        lwm2mVersion: '1.1',
        objects: new Map([
          [0, {}],
          [1, {}],
          [3, {}],
          [4, {}],
          [5, {}],
        ]),
        instances: [{ path: [0, 0], ssid: 101, uri: 'coaps://server_1.example.com' }, { path: [0, 1] }, { path: [1, 0], ssid: 101 }, { path: [3, 0] }],
      });
      expect(findBootstrapAccount(r)).to.deep.equal({ path: [0, 1] });
    });

    it('bootstrap.md §5.1 example 2 (two servers with OSCORE)', () => {
      const r = parseBootstrapDiscover(
        '</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://s1.example.com",</0/2>;ssid=102;uri="coap://s2.example.com",</21/0>;ssid=101,</21/2>;ssid=102,</0/1>,</21/1>',
      );
      expect(r).to.deep.equal({
        lwm2mVersion: '1.1',
        objects: new Map([
          [0, {}],
          [21, {}],
        ]),
        instances: [
          { path: [0, 0], ssid: 101, uri: 'coaps://s1.example.com' },
          { path: [0, 2], ssid: 102, uri: 'coap://s2.example.com' },
          { path: [21, 0], ssid: 101 },
          { path: [21, 2], ssid: 102 },
          { path: [0, 1] },
          { path: [21, 1] },
        ],
      });
      expect(account(r)).to.equal(1);
    });

    it('bootstrap.md §5.1 example 3 (1.2, object version)', () => {
      const r = parseBootstrapDiscover('</>;lwm2m=1.2,</0/0>;ssid=10;uri="coaps://server_1.example.com",</0/1>,</1/0>;ssid=10,</3/0>,</4>,</55>;ver=1.9,</55/0>');
      expect(r).to.deep.equal({
        lwm2mVersion: '1.2',
        objects: new Map<number, { version?: string }>([
          [0, {}],
          [1, {}],
          [3, {}],
          [4, {}],
          [55, { version: '1.9' }],
        ]),
        instances: [
          { path: [0, 0], ssid: 10, uri: 'coaps://server_1.example.com' },
          { path: [0, 1] },
          { path: [1, 0], ssid: 10 },
          { path: [3, 0] },
          { path: [55, 0] },
        ],
      });
      expect(account(r)).to.equal(1);
    });

    it('bootstrap.md §5.1 example 4 (1.0 style bare header)', () => {
      const r = parseBootstrapDiscover('lwm2m="1.0",</0/0>;ssid=101,</0/1>,</1/0>;ssid=101,</3/0>,</5>,</4>');
      expect(r).to.deep.equal({
        lwm2mVersion: '1.0',
        objects: new Map([
          [0, {}],
          [1, {}],
          [3, {}],
          [5, {}],
          [4, {}],
        ]),
        instances: [{ path: [0, 0], ssid: 101 }, { path: [0, 1] }, { path: [1, 0], ssid: 101 }, { path: [3, 0] }],
      });
      expect(account(r)).to.equal(1);
    });

    it('OMA examples with a stray trailing slash', () => {
      const r = parseBootstrapDiscover('</>;lwm2m=1.1,</0/0>;ssid=101;uri="coaps://a",</0/1/>,</1/0/>;ssid=101');
      expect(r.instances).to.deep.equal([{ path: [0, 0], ssid: 101, uri: 'coaps://a' }, { path: [0, 1] }, { path: [1, 0], ssid: 101 }]);
      expect(account(r)).to.equal(1);
    });

    it('Leshan client variant: lwm2m=1.0 link, </0>;ver=1.1, uri on the BS account', () => {
      const r = parseBootstrapDiscover(
        '</>;lwm2m=1.0,</0>;ver=1.1,</0/0>;uri="coap://bs.example.com:5683",</0/1>;ssid=123;uri="coaps://dm.example.com:5684",</1>;ver=1.1,</1/0>;ssid=123,</3>;ver=1.1,</3/0>',
      );
      expect(r.lwm2mVersion).to.equal('1.0');
      expect(r.objects).to.deep.equal(
        new Map([
          [0, { version: '1.1' }],
          [1, { version: '1.1' }],
          [3, { version: '1.1' }],
        ]),
      );
      expect(findBootstrapAccount(r)).to.deep.equal({ path: [0, 0], uri: 'coap://bs.example.com:5683' });
    });

    it('Wakaama variants: 1.1 with </>, 1.0 build without it (quoted or not)', () => {
      const wak11 = parseBootstrapDiscover('</>;lwm2m=1.1,</0/0>,</0/1>;ssid=1;uri="coap://localhost:5683",</1/1>;ssid=1,</3/0>');
      expect(wak11.lwm2mVersion).to.equal('1.1');
      expect(account(wak11)).to.equal(0);
      for (const header of ['lwm2m="1.0"', 'lwm2m=1.0']) {
        const r = parseBootstrapDiscover(`${header},</0/0>,</0/1>;ssid=1,</1/1>;ssid=1,</3/0>`);
        expect(r.lwm2mVersion, header).to.equal('1.0');
        expect(account(r), header).to.equal(0);
        expect(r.instances, header).to.have.length(4);
      }
    });

    it('bare header carrying a 1.1 version with object links (older embedded clients)', () => {
      const r = parseBootstrapDiscover('lwm2m="1.1",</0>,</0/0>,</0/1>;ssid=101,</1>,</1/0>;ssid=101,</3>,</3/0>');
      expect(r.lwm2mVersion).to.equal('1.1');
      expect([...r.objects.keys()]).to.deep.equal([0, 1, 3]);
      expect(account(r)).to.equal(0);
    });

    it('no BS account, no version, no objects', () => {
      const r = parseBootstrapDiscover('</0/1>;ssid=1,</1/0>;ssid=1');
      expect(r.lwm2mVersion).to.equal(undefined);
      expect(findBootstrapAccount(r)).to.equal(undefined);
      expect(parseBootstrapDiscover('')).to.deep.equal({ objects: new Map(), instances: [] });
    });

    it('refuses malformed ssid and deep or oversized paths', () => {
      expectError(() => parseBootstrapDiscover('</>;lwm2m=1.1,</0/0>;ssid=abc'), 'invalid');
      expectError(() => parseBootstrapDiscover('</0/0>;ssid=-1'), 'invalid');
      expectError(() => parseBootstrapDiscover('</0/0>;ssid=70000'), 'out_of_range');
      expectError(() => parseBootstrapDiscover('</0/0/1>'), 'bad_path');
      expectError(() => parseBootstrapDiscover('</65535>'), 'bad_path');
      expectError(() => parseBootstrapDiscover('</>;lwm2m=1.1,</0/0>;uri="coap://x'), 'truncated', 25);
    });
  });

  describe('Discover responses (linkAttributes, lwm2mPathOf)', () => {
    const typed = (text: string): Array<[number[] | undefined, LinkAttributes]> => parseLinkFormat(text).map((l) => [lwm2mPathOf(l.uri), linkAttributes(l)]);

    it('registration.md §7.2: Discover /3', () => {
      expect(
        typed(
          '</3>;pmin=10,</3/0>;pmax=60,</3/0/1>,</3/0/2>,</3/0/3>,</3/0/4>,</3/0/6>;dim=2,</3/0/7>;dim=2;gt=50;lt=42.2,</3/0/8>;dim=2,</3/0/11>,</3/0/16>',
        ),
      ).to.deep.equal([
        [[3], { pmin: 10 }],
        [[3, 0], { pmax: 60 }],
        [[3, 0, 1], {}],
        [[3, 0, 2], {}],
        [[3, 0, 3], {}],
        [[3, 0, 4], {}],
        [[3, 0, 6], { dim: 2 }],
        [[3, 0, 7], { dim: 2, gt: 50, lt: 42.2 }],
        [[3, 0, 8], { dim: 2 }],
        [[3, 0, 11], {}],
        [[3, 0, 16], {}],
      ]);
    });

    it('registration.md §7.2: Discover /1?depth=1', () => {
      expect(typed('</1>,</1/0>,</1/4>;pmax=300')).to.deep.equal([
        [[1], {}],
        [[1, 0], {}],
        [[1, 4], { pmax: 300 }],
      ]);
    });

    it('registration.md §7.2: Discover /3/0/7 (resource instances)', () => {
      expect(typed('</3/0/7>;dim=2;pmin=10;pmax=60;gt=50;lt=42.2,</3/0/7/0>,</3/0/7/1>;lt=45')).to.deep.equal([
        [[3, 0, 7], { dim: 2, pmin: 10, pmax: 60, gt: 50, lt: 42.2 }],
        [[3, 0, 7, 0], {}],
        [[3, 0, 7, 1], { lt: 45 }],
      ]);
    });

    it('types every attribute; ignores unknown ones; first occurrence wins', () => {
      const [link] = parseLinkFormat(
        '</3303/0/5700>;pmin=1;pmax="300";gt=-1.5e2;lt=.5;st=2.;epmin=0;epmax=10;edge=1;con=0;hqmax=5;dim=0;ver=1.1;foo=bar;obs;pmin=99',
      );
      expect(linkAttributes(link!)).to.deep.equal({ pmin: 1, pmax: 300, gt: -150, lt: 0.5, st: 2, epmin: 0, epmax: 10, edge: 1, con: 0, hqmax: 5, dim: 0, ver: '1.1' });
    });

    it('refuses malformed attribute values', () => {
      const attrs = (params: string): LinkAttributes => linkAttributes(parseLinkFormat(`</3/0/7>${params}`)[0]!);
      for (const bad of [';pmin=-1', ';pmin=1.5', ';pmax=abc', ';gt=abc', ';gt=1e', ';lt=-', ';st=.', ';gt=1e999', ';edge=2', ';con=true', ';pmin', ';ver=2', ';dim=x']) {
        expectError(() => attrs(bad), 'invalid');
      }
      expectError(() => attrs(';dim=256'), 'out_of_range');
      expect(attrs(';dim=255')).to.deep.equal({ dim: 255 });
    });

    it('lwm2mPathOf: root, alternate root, foreign links, broken numeric paths', () => {
      expect(lwm2mPathOf('/')).to.deep.equal([]);
      expect(lwm2mPathOf('/3/0/7/1/')).to.deep.equal([3, 0, 7, 1]);
      expect(lwm2mPathOf('/03')).to.deep.equal([3]);
      expect(lwm2mPathOf('/lwm2m/3/0', '/lwm2m')).to.deep.equal([3, 0]);
      expect(lwm2mPathOf('/lwm2m', '/lwm2m')).to.deep.equal([]);
      expect(lwm2mPathOf('/lwm2m/5/', '/lwm2m/')).to.deep.equal([5]);
      for (const foreign of ['', '3/0', '/a', '/3//0', '/3/0?x', 'coap://h/3']) expect(lwm2mPathOf(foreign), foreign).to.equal(undefined);
      expect(lwm2mPathOf('/3/0', '/lwm2m')).to.equal(undefined);
      expect(lwm2mPathOf('/lwm2mx/3', '/lwm2m')).to.equal(undefined);
      expectError(() => lwm2mPathOf('/1/2/3/4/5'), 'bad_path');
      expectError(() => lwm2mPathOf('/65535'), 'bad_path');
      expectError(() => lwm2mPathOf('/3/12345678901234567890'), 'bad_path');
    });

    it('linkParam gives the first value, "" for a flag, undefined when absent', () => {
      const [link] = parseLinkFormat('</1>;a=1;a=2;f');
      expect(linkParam(link!, 'a')).to.equal('1');
      expect(linkParam(link!, 'f')).to.equal('');
      expect(linkParam(link!, 'x')).to.equal(undefined);
    });
  });
});
