import { expect } from 'chai';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join } from 'node:path';
import {
  DdfError,
  defaultObjectsDir,
  loadDdfDirectory,
  loadObjectRegistry,
  parseDdf,
  parseRange,
} from '../../src/lwm2m/ddf.js';
import type { ObjectModel, ObjectRegistry } from '../../src/lwm2m/model.js';
import type { ResourceType } from '../../src/lwm2m/value.js';
import { testModels } from '../support/models.js';

/** Expected resource row, written by hand from objects.md: [ID, type, S|M, M|O, operations]. */
type Row = [id: number, type: ResourceType, inst: 'S' | 'M', req: 'M' | 'O', ops: '' | 'R' | 'W' | 'RW' | 'E'];

// objects.md §2 — all Security resources have no DM operations.
const SECURITY_1_2: Row[] = [
  [0, 'string', 'S', 'M', ''], [1, 'boolean', 'S', 'M', ''], [2, 'integer', 'S', 'M', ''],
  [3, 'opaque', 'S', 'M', ''], [4, 'opaque', 'S', 'M', ''], [5, 'opaque', 'S', 'M', ''],
  [6, 'integer', 'S', 'O', ''], [7, 'opaque', 'S', 'O', ''], [8, 'opaque', 'S', 'O', ''],
  [9, 'string', 'S', 'O', ''], [10, 'integer', 'S', 'O', ''], [11, 'integer', 'S', 'O', ''],
  [12, 'integer', 'S', 'O', ''], [13, 'unsigned', 'S', 'O', ''], [14, 'string', 'S', 'O', ''],
  [15, 'unsigned', 'S', 'O', ''], [16, 'unsigned', 'M', 'O', ''], [17, 'objlnk', 'S', 'O', ''],
  [18, 'unsigned', 'M', 'O', ''], [19, 'unsigned', 'M', 'O', ''], [20, 'unsigned', 'M', 'O', ''],
  [21, 'unsigned', 'M', 'O', ''], [22, 'unsigned', 'S', 'O', ''], [23, 'unsigned', 'S', 'O', ''],
  [24, 'unsigned', 'S', 'O', ''], [25, 'string', 'M', 'O', ''], [26, 'objlnk', 'S', 'O', ''],
  [27, 'objlnk', 'M', 'O', ''], [28, 'integer', 'S', 'O', ''], [29, 'integer', 'S', 'O', ''],
  [30, 'string', 'S', 'O', ''],
];

// objects.md §3 — 13..20 with the 1.2 DDF operations (footnote 1).
const SERVER_1_2: Row[] = [
  [0, 'integer', 'S', 'M', 'R'], [1, 'integer', 'S', 'M', 'RW'], [2, 'integer', 'S', 'O', 'RW'],
  [3, 'integer', 'S', 'O', 'RW'], [4, 'none', 'S', 'O', 'E'], [5, 'integer', 'S', 'O', 'RW'],
  [6, 'boolean', 'S', 'M', 'RW'], [7, 'string', 'S', 'M', 'RW'], [8, 'none', 'S', 'M', 'E'],
  [9, 'none', 'S', 'O', 'E'], [10, 'objlnk', 'S', 'O', 'RW'], [11, 'unsigned', 'S', 'O', 'R'],
  [12, 'time', 'S', 'O', 'R'], [13, 'unsigned', 'S', 'O', 'R'], [14, 'unsigned', 'S', 'O', 'RW'],
  [15, 'boolean', 'S', 'O', 'R'], [16, 'boolean', 'S', 'O', 'R'], [17, 'unsigned', 'S', 'O', 'RW'],
  [18, 'unsigned', 'S', 'O', 'RW'], [19, 'unsigned', 'S', 'O', 'RW'], [20, 'unsigned', 'S', 'O', 'RW'],
  [21, 'boolean', 'S', 'O', 'RW'], [22, 'string', 'S', 'O', 'RW'], [23, 'boolean', 'S', 'O', 'RW'],
  [24, 'objlnk', 'M', 'O', 'RW'], [25, 'string', 'M', 'O', 'RW'], [26, 'integer', 'S', 'O', 'RW'],
  [27, 'unsigned', 'S', 'O', 'RW'],
];

// objects.md §4
const ACL_1_1: Row[] = [
  [0, 'integer', 'S', 'M', 'R'], [1, 'integer', 'S', 'M', 'R'], [2, 'integer', 'M', 'O', 'RW'], [3, 'integer', 'S', 'M', 'RW'],
];

// objects.md §5
const DEVICE_1_2: Row[] = [
  [0, 'string', 'S', 'O', 'R'], [1, 'string', 'S', 'O', 'R'], [2, 'string', 'S', 'O', 'R'],
  [3, 'string', 'S', 'O', 'R'], [4, 'none', 'S', 'M', 'E'], [5, 'none', 'S', 'O', 'E'],
  [6, 'integer', 'M', 'O', 'R'], [7, 'integer', 'M', 'O', 'R'], [8, 'integer', 'M', 'O', 'R'],
  [9, 'integer', 'S', 'O', 'R'], [10, 'integer', 'S', 'O', 'R'], [11, 'integer', 'M', 'M', 'R'],
  [12, 'none', 'S', 'O', 'E'], [13, 'time', 'S', 'O', 'RW'], [14, 'string', 'S', 'O', 'RW'],
  [15, 'string', 'S', 'O', 'RW'], [16, 'string', 'S', 'M', 'R'], [17, 'string', 'S', 'O', 'R'],
  [18, 'string', 'S', 'O', 'R'], [19, 'string', 'S', 'O', 'R'], [20, 'integer', 'S', 'O', 'R'],
  [21, 'integer', 'S', 'O', 'R'], [22, 'objlnk', 'M', 'O', 'R'],
];

// objects.md §6 — key material is String up to 1.1 and Opaque from 2.0.
function oscore(key: ResourceType): Row[] {
  return [
    [0, key, 'S', 'M', ''], [1, key, 'S', 'M', ''], [2, key, 'S', 'M', ''], [3, 'integer', 'S', 'O', ''],
    [4, 'integer', 'S', 'O', ''], [5, key, 'S', 'O', ''], [6, key, 'S', 'O', ''],
  ];
}

interface Expected {
  id: number;
  version: string;
  multiple: boolean;
  mandatory: boolean;
  rows: Row[];
}

const EXPECTED: Expected[] = [
  { id: 0, version: '1.2', multiple: true, mandatory: true, rows: SECURITY_1_2 },
  { id: 1, version: '1.2', multiple: true, mandatory: true, rows: SERVER_1_2 },
  { id: 2, version: '1.1', multiple: true, mandatory: false, rows: ACL_1_1 },
  { id: 3, version: '1.2', multiple: false, mandatory: true, rows: DEVICE_1_2 },
  { id: 21, version: '2.0', multiple: true, mandatory: false, rows: oscore('opaque') },
  { id: 21, version: '1.1', multiple: true, mandatory: false, rows: oscore('string') },
];

const SCHEMA = 'http://www.openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd';
const OBJECT_SEQUENCE = [
  'Name', 'Description1', 'ObjectID', 'ObjectURN', 'LWM2MVersion', 'ObjectVersion',
  'MultipleInstances', 'Mandatory', 'Resources', 'Description2',
];
const ITEM_SEQUENCE = ['Name', 'Operations', 'MultipleInstances', 'Mandatory', 'Type', 'RangeEnumeration', 'Units', 'Description'];

/** The minimal example of objects.md §7.1, verbatim. */
const MINIMAL_EXAMPLE = `<?xml version="1.0" encoding="utf-8"?>
<LWM2M xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
       xsi:noNamespaceSchemaLocation="http://www.openmobilealliance.org/tech/profiles/LWM2M-v1_1.xsd">
  <Object ObjectType="MODefinition">
    <Name>Example Sensor</Name>
    <Description1>Demo object.</Description1>
    <ObjectID>32769</ObjectID>
    <ObjectURN>urn:oma:lwm2m:x:32769:1.1</ObjectURN>
    <LWM2MVersion>1.1</LWM2MVersion>
    <ObjectVersion>1.1</ObjectVersion>
    <MultipleInstances>Multiple</MultipleInstances>
    <Mandatory>Optional</Mandatory>
    <Resources>
      <Item ID="0">
        <Name>Value</Name><Operations>R</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Mandatory</Mandatory>
        <Type>Float</Type><RangeEnumeration>-40..125</RangeEnumeration><Units>Cel</Units>
        <Description>Current value.</Description>
      </Item>
      <Item ID="1">
        <Name>Reset</Name><Operations>E</Operations>
        <MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory>
        <Type></Type><RangeEnumeration></RangeEnumeration><Units></Units>
        <Description>Reset the sensor.</Description>
      </Item>
    </Resources>
    <Description2></Description2>
  </Object>
</LWM2M>
`;

/** A resource element; each field can be overridden or (with null) left out. */
function item(id: string | null, f: Partial<Record<'name' | 'ops' | 'multi' | 'mand' | 'type' | 'range' | 'units', string | null>> = {}): string {
  const el = (tag: string, v: string | null | undefined, dflt: string): string =>
    v === null ? '' : `<${tag}>${v ?? dflt}</${tag}>`;
  return (
    `<Item${id === null ? '' : ` ID="${id}"`}>` +
    el('Name', f.name, `R${id ?? ''}`) +
    el('Operations', f.ops, 'R') +
    el('MultipleInstances', f.multi, 'Single') +
    el('Mandatory', f.mand, 'Optional') +
    el('Type', f.type, 'Integer') +
    el('RangeEnumeration', f.range, '') +
    el('Units', f.units, '') +
    '<Description>d</Description></Item>'
  );
}

/** An object element; header fields can be overridden or (with null) left out. */
function object(items: string, f: Partial<Record<'id' | 'urn' | 'lwm2m' | 'ver' | 'multi' | 'mand' | 'name', string | null>> = {}): string {
  const el = (tag: string, v: string | null | undefined, dflt: string): string =>
    v === null ? '' : `<${tag}>${v ?? dflt}</${tag}>`;
  return (
    '<Object ObjectType="MODefinition">' +
    el('Name', f.name, 'Test') +
    '<Description1>t</Description1>' +
    el('ObjectID', f.id, '32770') +
    el('ObjectURN', f.urn, 'urn:oma:lwm2m:x:32770') +
    el('LWM2MVersion', f.lwm2m, '1.0') +
    el('ObjectVersion', f.ver, '1.0') +
    el('MultipleInstances', f.multi, 'Multiple') +
    el('Mandatory', f.mand, 'Optional') +
    `<Resources>${items}</Resources><Description2></Description2></Object>`
  );
}

function doc(...objects: string[]): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<LWM2M>${objects.join('')}</LWM2M>`;
}

/** Asserts `fn` throws a DdfError whose message contains every fragment. */
function expectDdfError(fn: () => unknown, ...fragments: string[]): DdfError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a DdfError').to.be.instanceOf(DdfError);
  const err = caught as DdfError;
  for (const f of fragments) expect(err.message).to.include(f);
  return err;
}

async function expectAsyncDdfError(p: Promise<unknown>, ...fragments: string[]): Promise<DdfError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a DdfError').to.be.instanceOf(DdfError);
  const err = caught as DdfError;
  for (const f of fragments) expect(err.message).to.include(f);
  return err;
}

describe('lwm2m/ddf', () => {
  describe('shipped object definitions', () => {
    let registry: ObjectRegistry;
    before(async () => {
      registry = await loadObjectRegistry();
    });

    it('finds the objects folder of the repository', () => {
      const dir = defaultObjectsDir();
      expect(isAbsolute(dir)).to.equal(true);
      expect(basename(dir)).to.equal('objects');
      const pkg = JSON.parse(readFileSync(join(dirname(dir), 'package.json'), 'utf8')) as { name?: string };
      expect(pkg.name).to.equal('lwbs');
      expect(existsSync(join(dir, '0.xml'))).to.equal(true);
    });

    it('loads every shipped file, with versions side by side', async () => {
      const files = (await readdir(defaultObjectsDir())).filter((f) => f.endsWith('.xml')).sort();
      expect(files).to.deep.equal(['0.xml', '1.xml', '2.xml', '21-1_1.xml', '21.xml', '3.xml', '4.xml', '5.xml']);
      const ids = registry.all().map((m) => `${m.id}@${m.version}`);
      expect(ids).to.deep.equal(['0@1.2', '1@1.2', '2@1.1', '3@1.2', '4@1.3', '5@1.2', '21@1.1', '21@2.0']);
      expect(registry.versions(21)).to.deep.equal(['1.1', '2.0']);
      expect(basename(registry.get(21, '1.1')?.source ?? '')).to.equal('21-1_1.xml');
      expect(basename(registry.get(21, '2.0')?.source ?? '')).to.equal('21.xml');
      // The latest version is what an unversioned lookup sees.
      expect(registry.resource(21, 0)?.type).to.equal('opaque');
    });

    for (const exp of EXPECTED) {
      it(`object ${exp.id} version ${exp.version} matches objects.md row by row`, () => {
        const m = registry.get(exp.id, exp.version);
        expect(m, `object ${exp.id}@${exp.version}`).to.not.equal(undefined);
        const model = m as ObjectModel;
        expect(model.multiple, 'object MultipleInstances').to.equal(exp.multiple);
        expect(model.mandatory, 'object Mandatory').to.equal(exp.mandatory);
        expect([...model.resources.keys()]).to.deep.equal(exp.rows.map((r) => r[0]));
        for (const [id, type, inst, req, ops] of exp.rows) {
          const r = model.resources.get(id);
          const where = `/${exp.id}/x/${id} (v${exp.version})`;
          expect(r, where).to.not.equal(undefined);
          expect(r?.type, `${where} type`).to.equal(type);
          expect(r?.multiple, `${where} multiple`).to.equal(inst === 'M');
          expect(r?.mandatory, `${where} mandatory`).to.equal(req === 'M');
          expect(r?.operations, `${where} operations`).to.equal(ops);
        }
      });
    }

    it('OSCORE 1.1 and 2.0 differ in the type of the key material', () => {
      for (const rid of [0, 1, 2, 5, 6]) {
        expect(registry.get(21, '1.1')?.resources.get(rid)?.type).to.equal('string');
        expect(registry.get(21, '2.0')?.resources.get(rid)?.type).to.equal('opaque');
      }
      expect(registry.get(21, '1.1')?.urn).to.equal('urn:oma:lwm2m:oma:21:1.1');
      expect(registry.get(21, '2.0')?.urn).to.equal('urn:oma:lwm2m:oma:21:2.0');
      // A client announcing ver=1.1 gets String keys, one announcing nothing the latest (Opaque).
      expect(registry.withVersions(new Map([[21, '1.1']])).resource(21, 0)?.type).to.equal('string');
    });

    it('carries the ranges and units objects.md calls out', () => {
      const res = (o: number, r: number) => registry.get(o)?.resources.get(r);
      // Short Server ID is 1..65534 everywhere (0 and 65535 are reserved).
      expect(res(0, 10)?.range).to.deep.equal({ min: 1, max: 65534 });
      expect(res(1, 0)?.range).to.deep.equal({ min: 1, max: 65534 });
      expect(res(0, 2)?.range).to.deep.equal({ min: 0, max: 4 });
      expect(res(2, 2)?.range).to.deep.equal({ min: 0, max: 31 });
      expect(res(2, 3)?.range).to.deep.equal({ min: 0, max: 65535 });
      expect(res(3, 11)?.range).to.deep.equal({ min: 0, max: 32 });
      expect(res(3, 9)?.range).to.deep.equal({ min: 0, max: 100 });
      // The registry's bogus unit "s" on Matching Type / Certificate Usage is not reproduced.
      expect(res(0, 13)?.units).to.equal('');
      expect(res(0, 15)?.units).to.equal('');
      expect(res(0, 13)?.range).to.deep.equal({ min: 0, max: 3 });
      expect(res(0, 15)?.range).to.deep.equal({ min: 0, max: 3 });
      expect(res(0, 11)?.units).to.equal('s');
      expect(res(0, 12)?.units).to.equal('s');
      for (const r of [1, 2, 3, 5, 14, 18, 19]) expect(res(1, r)?.units, `/1/x/${r}`).to.equal('s');
      for (const r of [13, 17, 20]) expect(res(1, r)?.units, `/1/x/${r}`).to.equal('');
      expect(res(3, 7)?.units).to.equal('mV');
      expect(res(3, 8)?.units).to.equal('mA');
    });

    it('objects 4 and 5 are at their latest registry versions', () => {
      const cm = registry.get(4);
      expect(cm?.version).to.equal('1.3');
      expect(cm?.multiple).to.equal(false);
      expect([...(cm?.resources.keys() ?? [])]).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
      expect(cm?.resources.get(0)?.range).to.deep.equal({ min: 0, max: 50 });
      expect(cm?.resources.get(4)?.type).to.equal('string');
      expect(cm?.resources.get(4)?.multiple).to.equal(true);
      const fw = registry.get(5);
      expect(fw?.version).to.equal('1.2');
      expect(fw?.multiple).to.equal(true);
      // Resource 4 does not exist in Firmware Update.
      expect([...(fw?.resources.keys() ?? [])]).to.deep.equal([0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
      expect(fw?.resources.get(0)?.type).to.equal('opaque');
      expect(fw?.resources.get(0)?.operations).to.equal('W');
      expect(fw?.resources.get(2)?.type).to.equal('none');
      expect(fw?.resources.get(13)?.type).to.equal('unsigned');
    });

    it('agrees with the hand-written test models in type and multiplicity', () => {
      let checked = 0;
      for (const id of testModels.ids()) {
        const hand = testModels.get(id) as ObjectModel;
        const loaded = registry.get(id);
        expect(loaded, `object ${id}`).to.not.equal(undefined);
        expect(loaded?.multiple, `object ${id} multiple`).to.equal(hand.multiple);
        for (const [rid, r] of hand.resources) {
          const l = loaded?.resources.get(rid);
          expect(l, `/${id}/x/${rid}`).to.not.equal(undefined);
          expect(l?.type, `/${id}/x/${rid} type`).to.equal(r.type);
          expect(l?.multiple, `/${id}/x/${rid} multiple`).to.equal(r.multiple);
          checked++;
        }
      }
      expect(checked).to.be.greaterThan(40);
    });

    it('follows the XSD element order and schema reference, with our own descriptions present', async () => {
      const ordered = new XMLParser({ preserveOrder: true, ignoreAttributes: false, ignoreDeclaration: true });
      type OrderedNode = Record<string, unknown> & { ':@'?: Record<string, string> };
      const tagOf = (n: OrderedNode): string => Object.keys(n).find((k) => k !== ':@') as string;
      const childrenOf = (n: OrderedNode): OrderedNode[] => (n[tagOf(n)] as OrderedNode[]).filter((c) => tagOf(c) !== '#text');
      const dir = defaultObjectsDir();
      for (const file of (await readdir(dir)).filter((f) => f.endsWith('.xml'))) {
        const nodes = ordered.parse(await readFile(join(dir, file), 'utf8')) as OrderedNode[];
        const root = nodes.find((n) => tagOf(n) === 'LWM2M') as OrderedNode;
        expect(root?.[':@']?.['@_xsi:noNamespaceSchemaLocation'], file).to.equal(SCHEMA);
        const objs = childrenOf(root);
        expect(objs.map(tagOf), file).to.deep.equal(['Object']);
        const obj = objs[0] as OrderedNode;
        expect(obj[':@']?.['@_ObjectType'], file).to.equal('MODefinition');
        expect(childrenOf(obj).map(tagOf), `${file} Object`).to.deep.equal(OBJECT_SEQUENCE);
        const resources = childrenOf(obj).find((c) => tagOf(c) === 'Resources') as OrderedNode;
        for (const it of childrenOf(resources)) {
          expect(tagOf(it)).to.equal('Item');
          expect(childrenOf(it).map(tagOf), `${file} Item ${it[':@']?.['@_ID']}`).to.deep.equal(ITEM_SEQUENCE);
        }
        for (const m of parseDdf(await readFile(join(dir, file), 'utf8'), file)) {
          expect(m.description, `${file} Description1`).to.not.equal('');
          expect(m.urn).to.equal(`urn:oma:lwm2m:oma:${m.id}:${m.version}`);
          for (const r of m.resources.values()) expect(r.description, `${file} Item ${r.id}`).to.not.equal('');
        }
      }
    });
  });

  describe('parseDdf', () => {
    it('parses the minimal example of objects.md §7.1', () => {
      const models = parseDdf(MINIMAL_EXAMPLE, 'example.xml');
      expect(models).to.have.length(1);
      const m = models[0] as ObjectModel;
      expect(m.id).to.equal(32769);
      expect(m.name).to.equal('Example Sensor');
      expect(m.description).to.equal('Demo object.');
      expect(m.urn).to.equal('urn:oma:lwm2m:x:32769:1.1');
      expect(m.version).to.equal('1.1');
      expect(m.lwm2mVersion).to.equal('1.1');
      expect(m.multiple).to.equal(true);
      expect(m.mandatory).to.equal(false);
      expect(m.source).to.equal('example.xml');
      expect(m.resources.get(0)).to.deep.equal({
        id: 0,
        name: 'Value',
        operations: 'R',
        multiple: false,
        mandatory: true,
        type: 'float',
        rangeEnumeration: '-40..125',
        range: { min: -40, max: 125 },
        units: 'Cel',
        description: 'Current value.',
      });
      expect(m.resources.get(1)).to.deep.equal({
        id: 1,
        name: 'Reset',
        operations: 'E',
        multiple: false,
        mandatory: false,
        type: 'none',
        rangeEnumeration: '',
        units: '',
        description: 'Reset the sensor.',
      });
    });

    it('accepts CDATA, whitespace and line breaks around every value', () => {
      const xml =
        '\uFEFF<?xml version="1.0"?>\n<!-- a comment -->\n<LWM2M>\n  <Object ObjectType="MODefinition">\n' +
        '    <Name><![CDATA[  Odd  Object ]]></Name>\n' +
        '    <Description1>\n      <![CDATA[First line.\nSecond line.]]>\n    </Description1>\n' +
        '    <ObjectID>\n      42\n    </ObjectID>\n' +
        '    <ObjectURN> urn:oma:lwm2m:oma:42:1.1 </ObjectURN>\n' +
        '    <LWM2MVersion> 1.1 </LWM2MVersion><ObjectVersion><![CDATA[ 1.1 ]]></ObjectVersion>\n' +
        '    <MultipleInstances>\n Single \n</MultipleInstances><Mandatory> Mandatory </Mandatory>\n' +
        '    <Resources>\n      <Item ID=" 7 ">\n' +
        '        <Name>\n  Level\n</Name><Operations> R W </Operations>\n' +
        '        <MultipleInstances><![CDATA[Multiple]]></MultipleInstances><Mandatory>optional</Mandatory>\n' +
        '        <Type>\n  <![CDATA[Integer]]>\n  </Type><RangeEnumeration>  0 .. 100  </RangeEnumeration>\n' +
        '        <Units> % </Units><Description><![CDATA[ <b>not markup</b> & more ]]>\t\t</Description>\n' +
        '      </Item>\n    </Resources>\n    <Description2><![CDATA[Extra.]]></Description2>\n  </Object>\n</LWM2M>\n';
      const [m] = parseDdf(xml, 'odd.xml');
      expect(m?.id).to.equal(42);
      expect(m?.name).to.equal('Odd  Object');
      expect(m?.description).to.equal('First line.\nSecond line.\n\nExtra.');
      expect(m?.urn).to.equal('urn:oma:lwm2m:oma:42:1.1');
      expect(m?.version).to.equal('1.1');
      expect(m?.multiple).to.equal(false);
      expect(m?.mandatory).to.equal(true);
      const r = m?.resources.get(7);
      expect(r?.name).to.equal('Level');
      expect(r?.operations).to.equal('RW');
      expect(r?.multiple).to.equal(true);
      expect(r?.mandatory).to.equal(false);
      expect(r?.type).to.equal('integer');
      expect(r?.rangeEnumeration).to.equal('0 .. 100');
      expect(r?.range).to.deep.equal({ min: 0, max: 100 });
      expect(r?.units).to.equal('%');
      expect(r?.description).to.equal('<b>not markup</b> & more');
    });

    it('maps type names case-insensitively, including Unsigned Integer and Corelnk', () => {
      const cases: [string, ResourceType][] = [
        ['String', 'string'], ['string', 'string'], ['INTEGER', 'integer'], ['Unsigned Integer', 'unsigned'],
        ['unsigned integer', 'unsigned'], ['UnsignedInteger', 'unsigned'], ['Float', 'float'], ['boolean', 'boolean'],
        ['opaque', 'opaque'], ['time', 'time'], ['Objlnk', 'objlnk'], ['objlnk', 'objlnk'], ['Corelnk', 'corelnk'],
        ['corelnk', 'corelnk'],
      ];
      const xml = doc(object(cases.map(([t], i) => item(String(i), { type: t })).join('')));
      const [m] = parseDdf(xml, 'types.xml');
      cases.forEach(([t, expected], i) => expect(m?.resources.get(i)?.type, t).to.equal(expected));
    });

    it('accepts empty or missing Operations, empty Type on executables and missing versions', () => {
      const xml = doc(
        object(
          item('0', { ops: '' }) +
            item('1', { ops: null }) +
            item('2', { ops: 'E', type: '' }) +
            '<Item ID="3"><Name>X</Name><Operations>E</Operations><MultipleInstances>Single</MultipleInstances>' +
            '<Mandatory>Optional</Mandatory><Type/><RangeEnumeration/><Units/><Description/></Item>' +
            item('4', { ops: 'e', type: 'String' }),
          { lwm2m: null, ver: null, urn: null, id: '3' },
        ),
      );
      const [m] = parseDdf(xml, 'loose.xml');
      expect(m?.version).to.equal('1.0');
      expect(m?.lwm2mVersion).to.equal('1.0');
      expect(m?.urn).to.equal('urn:oma:lwm2m:oma:3');
      expect(m?.resources.get(0)?.operations).to.equal('');
      expect(m?.resources.get(1)?.operations).to.equal('');
      expect(m?.resources.get(2)?.type).to.equal('none');
      expect(m?.resources.get(3)?.type).to.equal('none');
      expect(m?.resources.get(3)?.description).to.equal('');
      // Executables never carry a value, whatever Type says.
      expect(m?.resources.get(4)?.type).to.equal('none');
      expect(m?.resources.get(4)?.operations).to.equal('E');
    });

    it('normalises versions and derives a URN when there is none', () => {
      const [a] = parseDdf(doc(object(item('0'), { id: '3300', ver: '2', lwm2m: '1.0.2', urn: '' })), 'v.xml');
      expect(a?.version).to.equal('2.0');
      expect(a?.lwm2mVersion).to.equal('1.0.2');
      expect(a?.urn).to.equal('urn:oma:lwm2m:ext:3300:2.0');
      const [b] = parseDdf(doc(object(item('0'), { id: '10300', ver: '', lwm2m: '', urn: null })), 'v.xml');
      expect(b?.version).to.equal('1.0');
      expect(b?.urn).to.equal('urn:oma:lwm2m:x:10300');
    });

    it('reads several objects from one file, and single Object/Item elements as lists', () => {
      const models = parseDdf(doc(object(item('0'), { id: '40000' }), object(item('5') + item('1'), { id: '40001' })), 'two.xml');
      expect(models.map((m) => m.id)).to.deep.equal([40000, 40001]);
      expect([...(models[0]?.resources.keys() ?? [])]).to.deep.equal([0]);
      // Resources are kept in ascending ID order whatever the file order.
      expect([...(models[1]?.resources.keys() ?? [])]).to.deep.equal([1, 5]);
      expect(models.every((m) => m.source === 'two.xml')).to.equal(true);
    });

    it('accepts an object without resources', () => {
      const [m] = parseDdf(doc(object('')), 'empty.xml');
      expect(m?.resources.size).to.equal(0);
    });

    it('parses numeric ranges opportunistically and keeps the raw text', () => {
      const cases: [string, { min: number; max: number } | undefined][] = [
        ['0..255', { min: 0, max: 255 }],
        ['0-255', { min: 0, max: 255 }],
        ['0..255 bytes', { min: 0, max: 255 }],
        ['1-65534', { min: 1, max: 65534 }],
        ['-40..125', { min: -40, max: 125 }],
        ['-40.5 .. 125.25', { min: -40.5, max: 125.25 }],
        ['0..65535', { min: 0, max: 65535 }],
        ['16,32,48', undefined],
        ['16-32-48 bytes', undefined],
        ['6 bytes', undefined],
        ['6', undefined],
        ['16-bit', undefined],
        ['The possible values are those listed in the spec', undefined],
        ['', undefined],
        ['10..1', undefined],
      ];
      for (const [text, expected] of cases) expect(parseRange(text), JSON.stringify(text)).to.deep.equal(expected);
      const [m] = parseDdf(doc(object(item('0', { range: '16-32-48 bytes' }) + item('1', { range: '0..255 bytes' }))), 'r.xml');
      expect(m?.resources.get(0)?.rangeEnumeration).to.equal('16-32-48 bytes');
      expect(m?.resources.get(0)).to.not.have.property('range');
      expect(m?.resources.get(1)?.range).to.deep.equal({ min: 0, max: 255 });
    });

    describe('broken input', () => {
      const cases: [title: string, xml: string, fragments: string[]][] = [
        ['not XML', 'this is not xml', ['not well-formed XML']],
        ['empty file', '', ['not well-formed XML']],
        ['unclosed element', '<LWM2M><Object><Name>x</Object></LWM2M>', ['not well-formed XML', 'line 1']],
        ['wrong root', '<Objects><Object><ObjectID>1</ObjectID></Object></Objects>', ['no <LWM2M> root element']],
        ['no Object', '<LWM2M></LWM2M>', ['LWM2M', 'no <Object> element']],
        ['missing ObjectID', doc(object(item('0'), { id: null })), ['Object > ObjectID', 'missing']],
        ['non-numeric ObjectID', doc(object(item('0'), { id: 'abc' })), ['ObjectID', 'invalid object ID "abc"']],
        ['reserved ObjectID', doc(object(item('0'), { id: '65535' })), ['ObjectID', 'invalid object ID "65535"']],
        ['negative ObjectID', doc(object(item('0'), { id: '-1' })), ['ObjectID', 'invalid object ID "-1"']],
        ['missing Item ID', doc(object(item(null), { id: '9' })), ['Object 9 > Item #1 > ID', 'missing ID attribute']],
        ['bad Item ID', doc(object(item('0') + item('x'), { id: '9' })), ['Object 9 > Item #2 > ID', 'invalid resource ID "x"']],
        ['Item ID too large', doc(object(item('70000'))), ['invalid resource ID "70000"']],
        ['duplicate resource ID', doc(object(item('1') + item('1'), { id: '9' })), ['Object 9 > Item 1', 'duplicate resource ID 1']],
        ['unknown MultipleInstances', doc(object(item('1', { multi: 'Many' }), { id: '9' })), ['Object 9 > Item 1 > MultipleInstances', 'unknown value "Many"']],
        ['missing resource MultipleInstances', doc(object(item('1', { multi: null }))), ['Item 1 > MultipleInstances', 'missing']],
        ['missing object MultipleInstances', doc(object(item('1'), { id: '9', multi: null })), ['Object 9 > MultipleInstances', 'missing']],
        ['unknown Mandatory', doc(object(item('1', { mand: 'Required' }))), ['Item 1 > Mandatory', 'unknown value "Required"']],
        ['unknown object Mandatory', doc(object(item('1'), { mand: 'Sometimes' })), ['> Mandatory', 'unknown value "Sometimes"']],
        ['unknown Type', doc(object(item('2', { type: 'Strng' }))), ['Item 2 > Type', 'unknown type "Strng"']],
        ['empty Type on a readable resource', doc(object(item('2', { type: '' }))), ['Item 2 > Type', 'not executable']],
        ['unknown Operations', doc(object(item('2', { ops: 'RWX' }))), ['Item 2 > Operations', 'unknown operations "RWX"']],
        ['invalid ObjectVersion', doc(object(item('0'), { ver: '1.x' })), ['ObjectVersion', 'invalid version "1.x"']],
        ['invalid LWM2MVersion', doc(object(item('0'), { lwm2m: 'v1' })), ['LWM2MVersion', 'invalid version "v1"']],
        ['repeated element', doc(object(item('0'), { name: 'A</Name><Name>B' })), ['Name', 'appears more than once']],
        ['repeated Resources', doc(object(item('0') + '</Resources><Resources>' + item('1'))), ['Resources', 'appears more than once']],
        ['dangerous element name', '<LWM2M><Object><__proto__>1</__proto__></Object></LWM2M>', ['XML parser refused']],
      ];
      for (const [title, xml, fragments] of cases) {
        it(`rejects ${title} with a DdfError naming the problem`, () => {
          const err = expectDdfError(() => parseDdf(xml, 'broken.xml'), 'broken.xml', ...fragments);
          expect(err.source).to.equal('broken.xml');
          expect(err.name).to.equal('DdfError');
        });
      }

      it('names the object of the second <Object> by its position until its ID is known', () => {
        expectDdfError(() => parseDdf(doc(object(item('0')), object(item('0'), { id: null })), 'b.xml'), 'b.xml: Object #2 > ObjectID: missing');
      });

      it('never throws anything but DdfError on mutated input', () => {
        const base = MINIMAL_EXAMPLE;
        const mutation = fc.record({
          at: fc.nat({ max: base.length }),
          cut: fc.nat({ max: 40 }),
          insert: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('<', '>', '</Item>', '<Item ID="0">', ']]>', '<![CDATA[', '&', '"', 'Multiple', 'E')),
        });
        fc.assert(
          fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (muts) => {
            let xml = base;
            for (const { at, cut, insert } of muts) {
              const p = Math.min(at, xml.length);
              xml = xml.slice(0, p) + insert + xml.slice(p + cut);
            }
            try {
              const models = parseDdf(xml, 'fuzz.xml');
              expect(models).to.be.an('array');
            } catch (e) {
              if (!(e instanceof DdfError)) throw e;
              expect(e.message.startsWith('fuzz.xml: ')).to.equal(true);
            }
          }),
          { numRuns: 300 },
        );
      });
    });
  });

  describe('folders', () => {
    let tmp: string;
    before(async () => {
      tmp = await mkdtemp(join(tmpdir(), 'lwbs-ddf-'));
    });
    after(async () => {
      await rm(tmp, { recursive: true, force: true });
    });

    it('a user folder overrides a definition with the same ID and version and extends the rest', async () => {
      const dir = join(tmp, 'user');
      await mkdir(join(dir, 'nested'), { recursive: true });
      // Device 1.2 replaced: resource 0 becomes an Integer here.
      await writeFile(join(dir, 'b-device.xml'), doc(object(item('0', { type: 'Integer' }), { id: '3', ver: '1.2', multi: 'Single', mand: 'Mandatory' })));
      // An earlier file in name order that the later one replaces.
      await writeFile(join(dir, 'a-device.xml'), doc(object(item('0', { type: 'Float' }), { id: '3', ver: '1.2' })));
      // A new object and an extra (older) OSCORE version.
      await writeFile(join(dir, 'c-new.xml'), doc(object(item('0'), { id: '32769', ver: '1.1' }), object(item('0', { type: 'String', ops: '' }), { id: '21', ver: '1.0' })));
      // Ignored: not *.xml, and not in the folder itself.
      await writeFile(join(dir, 'README.txt'), 'not a definition');
      await writeFile(join(dir, 'nested', 'broken.xml'), 'this is not xml');

      const loaded = await loadDdfDirectory(dir);
      expect(loaded.map((m) => basename(m.source ?? ''))).to.deep.equal(['a-device.xml', 'b-device.xml', 'c-new.xml', 'c-new.xml']);

      const reg = await loadObjectRegistry([dir]);
      const device = reg.get(3, '1.2');
      expect(basename(device?.source ?? '')).to.equal('b-device.xml');
      expect(device?.resources.get(0)?.type).to.equal('integer');
      expect(device?.resources.size).to.equal(1);
      expect(reg.get(32769)?.version).to.equal('1.1');
      expect(reg.versions(21)).to.deep.equal(['1.0', '1.1', '2.0']);
      // Adding an older version leaves the latest alone; our other objects are untouched.
      expect(reg.get(21)?.version).to.equal('2.0');
      expect(reg.get(0)?.resources.size).to.equal(31);
    });

    it('later user folders win over earlier ones', async () => {
      const one = join(tmp, 'one');
      const two = join(tmp, 'two');
      await mkdir(one);
      await mkdir(two);
      await writeFile(join(one, '3.xml'), doc(object(item('0', { type: 'Float' }), { id: '3', ver: '1.2' })));
      await writeFile(join(two, '3.xml'), doc(object(item('0', { type: 'Boolean' }), { id: '3', ver: '1.2' })));
      const reg = await loadObjectRegistry([one, two]);
      expect(reg.get(3, '1.2')?.resources.get(0)?.type).to.equal('boolean');
    });

    it('a bad file in a user folder gives a DdfError naming the file', async () => {
      const dir = join(tmp, 'bad');
      await mkdir(dir);
      await writeFile(join(dir, '1-good.xml'), doc(object(item('0'))));
      await writeFile(join(dir, '2-bad.xml'), doc(object(item('0', { multi: 'Sometimes' }))));
      const err = await expectAsyncDdfError(loadObjectRegistry([dir]), '2-bad.xml', 'MultipleInstances', 'unknown value "Sometimes"');
      expect(err.source).to.equal(join(dir, '2-bad.xml'));
    });

    it('a missing folder gives a DdfError naming the folder', async () => {
      const missing = join(tmp, 'does-not-exist');
      const err = await expectAsyncDdfError(loadDdfDirectory(missing), missing, 'cannot read object definition folder');
      expect(err.source).to.equal(missing);
    });
  });
});
