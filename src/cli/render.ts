/**
 * Renders LwM2M nodes for people (tree text) and tools (JSON). Opaque values are shown as hex,
 * bigints as exact decimal strings in JSON.
 */
import type { ModelLookup } from '../lwm2m/model.js';
import type { LwM2MNode, Resource } from '../lwm2m/node.js';
import { formatPath, type Path } from '../lwm2m/path.js';
import { type Value, valueToString } from '../lwm2m/value.js';
import { valueToJson } from '../lwm2m/value-json.js';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };

export { valueToJson };

export function nodeToJson(node: LwM2MNode): JsonValue {
  switch (node.kind) {
    case 'resource':
    case 'resourceInstance':
      return valueToJson(node.value);
    case 'multiResource':
      return Object.fromEntries([...node.instances].map(([k, v]) => [String(k), valueToJson(v)]));
    case 'instance':
      return Object.fromEntries([...node.resources].map(([k, r]) => [String(k), nodeToJson(r)]));
    case 'object':
      return Object.fromEntries([...node.instances].map(([k, i]) => [String(k), nodeToJson(i)]));
  }
}

/** Indented tree text, one value per line: `/3/0/0  Manufacturer  string  Open Mobile Alliance`. */
export function nodeToLines(path: Path, node: LwM2MNode, models?: ModelLookup): string[] {
  const out: string[] = [];
  const name = (o: number, r: number): string => models?.resource(o, r)?.name ?? '';
  const line = (p: Path, v: Value): void => {
    out.push(`${formatPath(p).padEnd(14)} ${name(p[0]!, p[2]!).padEnd(28)} ${v.type.padEnd(8)} ${valueToString(v)}`);
  };
  const resource = (base: Path, r: Resource): void => {
    if (r.kind === 'resource') line([...base, r.id], r.value);
    else if (r.instances.size === 0) out.push(`${formatPath([...base, r.id]).padEnd(14)} ${name(base[0]!, r.id).padEnd(28)} (no instances)`);
    else for (const [ri, v] of r.instances) line([...base, r.id, ri], v);
  };
  const parent = path.slice(0, -1);
  switch (node.kind) {
    case 'object':
      for (const inst of node.instances.values()) for (const r of inst.resources.values()) resource([node.id, inst.id], r);
      break;
    case 'instance':
      for (const r of node.resources.values()) resource([...parent, node.id], r);
      break;
    case 'resource':
    case 'multiResource':
      resource(parent, node);
      break;
    case 'resourceInstance':
      line(path, node.value);
      break;
  }
  return out;
}
