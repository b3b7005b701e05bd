/**
 * Loader for OMA DDF XML object definitions (the LwM2M registry's `<ObjectID>.xml` files).
 *
 * `parseDdf` turns the text of one file into `ObjectModel`s and does no I/O. It is lenient where
 * real files are irregular (CDATA, stray whitespace, empty Operations, empty Type on executables,
 * lowercase types, missing versions, several objects per file, free-text ranges) and strict where
 * a mistake would give codecs a wrong model (IDs, multiplicity, mandatory flag, type names): those
 * raise a `DdfError` naming the file and the element at fault.
 *
 * The directory helpers read our shipped `objects/` folder and optional user folders; a user
 * definition with the same object ID and version replaces ours.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { normaliseVersion, ObjectRegistry, type ObjectModel, type Operations, type ResourceModel } from './model.js';
import type { ResourceType } from './value.js';
import { packageRoot } from '../util/package-root.js';

/** A DDF file (or folder) that cannot be used; the message names the file and the element. */
export class DdfError extends Error {
  override readonly name = 'DdfError';
  constructor(
    /** File (or folder) name as given to the loader. */
    readonly source: string,
    /** Element or field at fault, e.g. `Object 3 > Item 5 > Type`; undefined for file-level faults. */
    readonly element: string | undefined,
    detail: string,
  ) {
    super(`${source}: ${element !== undefined ? `${element}: ` : ''}${detail}`);
  }
}

/** The highest usable 16-bit ID; 65535 (MAX_ID) is reserved and never names a real entity. */
const MAX_ID = 65534;

type XmlNode = Record<string, unknown>;

/**
 * One parser for all files (parse() keeps no state between calls). Values stay strings
 * (`parseTagValue: false`) so `1.0` or `007` are not turned into numbers; CDATA is merged into the
 * element text; `Object` and `Item` always come back as arrays, even when there is only one.
 */
const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name, _jPath, _isLeaf, isAttribute) => !isAttribute && (name === 'Object' || name === 'Item'),
});

/** Type names after lowercasing and removing blanks (`Unsigned Integer` → `unsignedinteger`). */
const TYPES: ReadonlyMap<string, ResourceType> = new Map<string, ResourceType>([
  ['string', 'string'],
  ['integer', 'integer'],
  ['unsignedinteger', 'unsigned'],
  ['float', 'float'],
  ['boolean', 'boolean'],
  ['opaque', 'opaque'],
  ['time', 'time'],
  ['objlnk', 'objlnk'],
  ['corelnk', 'corelnk'],
]);

/**
 * Parses the text of one DDF file. `source` (usually the file path) is used in error messages and
 * recorded in each model. Throws `DdfError` when the file cannot be used.
 */
export function parseDdf(xml: string, source = '<ddf>'): ObjectModel[] {
  // A UTF-8 BOM survives readFile(..., 'utf8') and is not a valid start of an XML document.
  const text = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    const { msg, line, col } = valid.err;
    const where = line !== undefined ? ` (line ${line}${col !== undefined ? `, column ${col}` : ''})` : '';
    throw new DdfError(source, undefined, `not well-formed XML: ${msg}${where}`);
  }
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (e) {
    // The parser refuses e.g. element names that could pollute prototypes.
    throw new DdfError(source, undefined, `XML parser refused the file: ${errorText(e)}`);
  }
  const root = findRoot(doc);
  if (root === undefined) throw new DdfError(source, undefined, 'no <LWM2M> root element');
  const objects = isNode(root) ? root['Object'] : undefined;
  if (!Array.isArray(objects) || objects.length === 0) {
    throw new DdfError(source, 'LWM2M', 'no <Object> element');
  }
  return objects.map((o, i) => parseObject(o, source, objects.length > 1 ? `Object #${i + 1}` : 'Object'));
}

/**
 * Reads every `*.xml` file directly in `dir` (not recursive), in file-name order, and returns all
 * the models they define. A missing folder or a bad file raises `DdfError` naming it.
 */
export async function loadDdfDirectory(dir: string): Promise<ObjectModel[]> {
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && e.name.toLowerCase().endsWith('.xml'))
      .map((e) => e.name)
      // Code-unit order, so the result does not depend on the process locale.
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } catch (e) {
    throw new DdfError(dir, undefined, `cannot read object definition folder: ${errorText(e)}`);
  }
  const files = names.map((n) => join(dir, n));
  const texts = await Promise.all(
    files.map(async (file) => {
      try {
        return await readFile(file, 'utf8');
      } catch (e) {
        throw new DdfError(file, undefined, `cannot read file: ${errorText(e)}`);
      }
    }),
  );
  return texts.flatMap((xml, i) => parseDdf(xml, files[i]));
}

/** Absolute path of the `objects/` folder shipped with lwbs (from source or compiled). */
export function defaultObjectsDir(): string {
  return join(packageRoot(), 'objects');
}

/**
 * Our shipped definitions, then each user folder in order. A later definition with the same
 * object ID and version replaces an earlier one; other versions stay side by side.
 */
export async function loadObjectRegistry(extraDirs: readonly string[] = []): Promise<ObjectRegistry> {
  const registry = new ObjectRegistry();
  registry.addAll(await loadDdfDirectory(defaultObjectsDir()));
  for (const dir of extraDirs) registry.addAll(await loadDdfDirectory(dir));
  return registry;
}

/**
 * Parses a numeric range at the start of a RangeEnumeration text: `a..b` or `a-b` (integers or
 * decimals, optionally negative), optionally followed by a unit word (`0..255 bytes`). Lists such
 * as `16,32,48` or `16-32-48`, single values and prose give undefined.
 */
export function parseRange(text: string): { min: number; max: number } | undefined {
  const m = /^\s*(-?\d+(?:\.\d+)?)\s*(?:\.\.|-)\s*(-?\d+(?:\.\d+)?)(?![\d.-])/.exec(text);
  if (!m) return undefined;
  const min = Number(m[1]);
  const max = Number(m[2]);
  return Number.isFinite(min) && Number.isFinite(max) && min <= max ? { min, max } : undefined;
}

// ------------------------------------------------------------------------------------------
// Internals

function parseObject(raw: unknown, source: string, label: string): ObjectModel {
  const node = asNode(raw);
  const fail: Fail = (field, detail) => {
    throw new DdfError(source, field !== undefined ? `${label} > ${field}` : label, detail);
  };
  const field = (name: string): string | undefined => childText(node, name, fail);

  const idText = field('ObjectID');
  if (idText === undefined || idText === '') return fail('ObjectID', 'missing');
  const objectId = parseId(idText);
  if (objectId === undefined) return fail('ObjectID', `invalid object ID "${idText}" (expected 0..${MAX_ID})`);
  // From here on name the object by its ID, which is what a user will search the file for.
  label = `Object ${objectId}`;

  const version = parseVersion(field('ObjectVersion'), /^\d+(\.\d+)?$/, 'ObjectVersion', fail);
  const lwm2mVersion = parseVersion(field('LWM2MVersion'), /^\d+(\.\d+){0,2}$/, 'LWM2MVersion', fail);
  const multiple = parseFlag(field('MultipleInstances'), 'multiple', 'single', 'MultipleInstances', fail);
  const mandatory = parseFlag(field('Mandatory'), 'mandatory', 'optional', 'Mandatory', fail);
  const urn = field('ObjectURN') || defaultUrn(objectId, version);
  const description = [field('Description1'), field('Description2')].filter((d) => d).join('\n\n');

  const resources = new Map<number, ResourceModel>();
  const container = node['Resources'];
  if (Array.isArray(container)) fail('Resources', 'element appears more than once');
  const items = isNode(container) ? container['Item'] : undefined;
  const parsed = Array.isArray(items) ? items.map((it, i) => parseItem(it, i, source, label)) : [];
  // Insert in ascending ID order so iteration order does not depend on the file's layout.
  parsed.sort((a, b) => a.id - b.id);
  for (const r of parsed) {
    if (resources.has(r.id)) fail(`Item ${r.id}`, `duplicate resource ID ${r.id}`);
    resources.set(r.id, r);
  }

  const model: ObjectModel = {
    id: objectId,
    name: field('Name') ?? '',
    description,
    urn,
    version,
    lwm2mVersion,
    multiple,
    mandatory,
    resources,
    source,
  };
  return model;
}

function parseItem(raw: unknown, index: number, source: string, objectLabel: string): ResourceModel {
  const node = asNode(raw);
  const idAttr = node['@_ID'];
  let label = `${objectLabel} > Item #${index + 1}`;
  const fail: Fail = (field, detail) => {
    throw new DdfError(source, field !== undefined ? `${label} > ${field}` : label, detail);
  };
  if (typeof idAttr !== 'string' || idAttr.trim() === '') return fail('ID', 'missing ID attribute');
  const id = parseId(idAttr);
  if (id === undefined) return fail('ID', `invalid resource ID "${idAttr}" (expected 0..${MAX_ID})`);
  label = `${objectLabel} > Item ${id}`;
  const field = (name: string): string | undefined => childText(node, name, fail);

  const opsText = field('Operations') ?? '';
  const operations = parseOperations(opsText);
  if (operations === undefined) return fail('Operations', `unknown operations "${opsText}" (expected R, W, RW, E or empty)`);
  const typeText = field('Type') ?? '';
  let type = lookupType(typeText);
  if (type === undefined) return fail('Type', `unknown type "${typeText}"`);
  // Executables carry no value whatever the file says; an empty Type is only legal on them.
  if (operations === 'E') type = 'none';
  else if (type === 'none') fail('Type', 'empty, but the resource is not executable');

  const rangeEnumeration = field('RangeEnumeration') ?? '';
  const range = parseRange(rangeEnumeration);
  const model: ResourceModel = {
    id,
    name: field('Name') ?? '',
    operations,
    multiple: parseFlag(field('MultipleInstances'), 'multiple', 'single', 'MultipleInstances', fail),
    mandatory: parseFlag(field('Mandatory'), 'mandatory', 'optional', 'Mandatory', fail),
    type,
    rangeEnumeration,
    ...(range !== undefined ? { range } : {}),
    units: field('Units') ?? '',
    description: field('Description') ?? '',
  };
  return model;
}

type Fail = (field: string | undefined, detail: string) => never;

/** Trimmed text of a child element; undefined when absent. A repeated element is an error. */
function childText(node: XmlNode, name: string, fail: Fail): string | undefined {
  const v = node[name];
  if (v === undefined) return undefined;
  if (Array.isArray(v)) fail(name, 'element appears more than once');
  return textOf(v).trim();
}

/** Text content of a parsed element: a string, or the `#text` of an element with attributes. */
function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (isNode(v)) {
    const t = v['#text'];
    return t === undefined ? '' : textOf(t);
  }
  return '';
}

function findRoot(doc: unknown): unknown {
  if (!isNode(doc)) return undefined;
  // Element names are case-sensitive in XML, but a hand-written `LwM2M` root is unambiguous.
  for (const key of Object.keys(doc)) if (key.toUpperCase() === 'LWM2M') return doc[key];
  return undefined;
}

function parseId(text: string): number | undefined {
  const t = text.trim();
  if (!/^\d{1,5}$/.test(t)) return undefined;
  const n = Number(t);
  return n <= MAX_ID ? n : undefined;
}

function parseVersion(text: string | undefined, shape: RegExp, field: string, fail: Fail): string {
  if (text === undefined || text === '') return '1.0';
  return shape.test(text) ? normaliseVersion(text) : fail(field, `invalid version "${text}"`);
}

function parseFlag(text: string | undefined, yes: string, no: string, field: string, fail: Fail): boolean {
  const t = (text ?? '').toLowerCase();
  if (t === yes) return true;
  if (t === no) return false;
  const expected = `expected ${cap(yes)} or ${cap(no)}`;
  return text === undefined ? fail(field, `missing (${expected})`) : fail(field, `unknown value "${text}" (${expected})`);
}

function parseOperations(text: string): Operations | undefined {
  switch (text.replace(/\s+/g, '').toUpperCase()) {
    case '':
      return '';
    case 'R':
      return 'R';
    case 'W':
      return 'W';
    case 'RW':
    case 'WR':
      return 'RW';
    case 'E':
      return 'E';
    default:
      return undefined;
  }
}

/** `'none'` for an empty Type, the mapped type for a known name, undefined for an unknown one. */
function lookupType(text: string): ResourceType | undefined {
  const key = text.replace(/[\s_-]+/g, '').toLowerCase();
  return key === '' ? 'none' : TYPES.get(key);
}

/** The URN the registry would give an object without one (`oma`/`ext`/`x` by ID range). */
function defaultUrn(id: number, version: string): string {
  const ns = id <= 1023 ? 'oma' : id >= 2048 && id <= 10240 ? 'ext' : 'x';
  return `urn:oma:lwm2m:${ns}:${id}${version === '1.0' ? '' : `:${version}`}`;
}

function isNode(v: unknown): v is XmlNode {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An element with neither attributes nor children parses as '' — treat it as an empty node. */
function asNode(v: unknown): XmlNode {
  return isNode(v) ? v : {};
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
