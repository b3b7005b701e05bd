/**
 * The typed LwM2M object model: what a DDF XML file says about an object and its resources.
 * `ObjectRegistry` keeps several versions of an object side by side (e.g. OSCORE 1.1 with String
 * keys and 2.0 with Opaque keys) and hands codecs a `ModelLookup` for the versions a client uses.
 */
import type { ResourceType } from './value.js';

export type Operations = '' | 'R' | 'W' | 'RW' | 'E';

export interface ResourceModel {
  readonly id: number;
  readonly name: string;
  readonly operations: Operations;
  readonly multiple: boolean;
  readonly mandatory: boolean;
  readonly type: ResourceType;
  /** Free text from the DDF, kept verbatim. */
  readonly rangeEnumeration: string;
  /** Numeric range parsed from `rangeEnumeration` when it has the form `a..b` or `a-b`. */
  readonly range?: { readonly min: number; readonly max: number };
  readonly units: string;
  readonly description: string;
}

export interface ObjectModel {
  readonly id: number;
  readonly name: string;
  readonly description: string;
  readonly urn: string;
  /** Object version `major.minor`; `1.0` when the DDF has none. */
  readonly version: string;
  /** Enabler version the object belongs to; `1.0` when the DDF has none. */
  readonly lwm2mVersion: string;
  readonly multiple: boolean;
  readonly mandatory: boolean;
  readonly resources: ReadonlyMap<number, ResourceModel>;
  /** Where the definition came from (file path), for diagnostics. */
  readonly source?: string;
}

/** What codecs need from the model: types and multiplicity of resources. */
export interface ModelLookup {
  object(objectId: number): ObjectModel | undefined;
  resource(objectId: number, resourceId: number): ResourceModel | undefined;
}

/** Compares `major.minor` version strings numerically (`1.10` > `1.9`). */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((x) => Number.parseInt(x, 10) || 0);
  const pb = b.split('.').map((x) => Number.parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export class ObjectRegistry implements ModelLookup {
  /** objectId -> version -> model */
  private readonly byId = new Map<number, Map<string, ObjectModel>>();
  /** objectId -> latest model (cache) */
  private readonly latest = new Map<number, ObjectModel>();

  /** Adds a model; a later model with the same ID and version replaces the earlier one. */
  add(model: ObjectModel): void {
    let versions = this.byId.get(model.id);
    if (!versions) this.byId.set(model.id, (versions = new Map()));
    versions.set(model.version, model);
    const cur = this.latest.get(model.id);
    if (!cur || compareVersions(model.version, cur.version) >= 0) this.latest.set(model.id, model);
  }

  addAll(models: Iterable<ObjectModel>): this {
    for (const m of models) this.add(m);
    return this;
  }

  /** The model of `objectId` at `version`, or the latest version when `version` is omitted. */
  get(objectId: number, version?: string): ObjectModel | undefined {
    if (version === undefined) return this.latest.get(objectId);
    return this.byId.get(objectId)?.get(normaliseVersion(version));
  }

  versions(objectId: number): string[] {
    return [...(this.byId.get(objectId)?.keys() ?? [])].sort(compareVersions);
  }

  /** All object IDs known, ascending. */
  ids(): number[] {
    return [...this.byId.keys()].sort((a, b) => a - b);
  }

  /** Every model, by object ID then version. */
  all(): ObjectModel[] {
    return this.ids().flatMap((id) => this.versions(id).map((v) => this.byId.get(id)!.get(v)!));
  }

  object(objectId: number): ObjectModel | undefined {
    return this.latest.get(objectId);
  }

  resource(objectId: number, resourceId: number): ResourceModel | undefined {
    return this.latest.get(objectId)?.resources.get(resourceId);
  }

  /**
   * A lookup that resolves each object at the version a client announced (`ver=` in Register),
   * falling back to the closest lower version we know, then to the latest.
   */
  withVersions(versions: ReadonlyMap<number, string>): ModelLookup {
    const pick = (objectId: number): ObjectModel | undefined => {
      const want = versions.get(objectId);
      if (want === undefined) return this.latest.get(objectId);
      const exact = this.get(objectId, want);
      if (exact) return exact;
      const lower = this.versions(objectId).filter((v) => compareVersions(v, want) <= 0);
      const best = lower[lower.length - 1];
      return best !== undefined ? this.get(objectId, best) : this.latest.get(objectId);
    };
    return {
      object: pick,
      resource: (o, r) => pick(o)?.resources.get(r),
    };
  }
}

/** `1` → `1.0`; `1.1` stays. */
export function normaliseVersion(v: string): string {
  const t = v.trim();
  return /^[0-9]+$/.test(t) ? `${t}.0` : t;
}
