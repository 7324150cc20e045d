import { resolve } from "node:path";
import { type DiscoveryConfig, type DiscoveryResult, discoverModels } from "../discovery/discover.js";
import { InspectionMemo } from "../discovery/inspect-candidate.js";
import type { ModelSpec } from "../discovery/types.js";

export class ModelNotFoundError extends Error {
  override readonly name = "ModelNotFoundError";
  constructor(readonly model: string, readonly known: string[]) {
    super(`model "${model}" not found${known.length ? `; available: ${known.slice(0, 20).join(", ")}` : "; no models were discovered"}`);
  }
}

/** The set of known models: lookup by name (case-insensitive) or alias (full path, long names). */
export class Registry {
  private result: DiscoveryResult;
  private byKey = new Map<string, ModelSpec>();
  /** Rescans re-read only the headers of files that changed. */
  private readonly memo = new InspectionMemo();

  constructor(private readonly config: DiscoveryConfig, private readonly cwd = process.cwd()) {
    this.result = this.index(discoverModels(config, cwd, this.memo));
  }

  private index(result: DiscoveryResult): DiscoveryResult {
    this.byKey.clear();
    // Names win over aliases: index aliases first, then let names overwrite.
    for (const m of result.models) for (const a of m.aliases) this.byKey.set(a.toLowerCase(), m);
    for (const m of result.models) this.byKey.set(m.name.toLowerCase(), m);
    return result;
  }

  /** Scans again; lookups see the new list from now on. */
  refresh(): DiscoveryResult {
    this.result = this.index(discoverModels(this.config, this.cwd, this.memo));
    return this.result;
  }

  get discovery(): DiscoveryResult {
    return this.result;
  }

  /** Every model found, including unusable ones (with `error`). */
  all(): ModelSpec[] {
    return this.result.models;
  }

  find(nameOrPath: string): ModelSpec | undefined {
    return this.byKey.get(nameOrPath.toLowerCase()) ?? this.byKey.get(resolve(this.cwd, nameOrPath).toLowerCase());
  }
}
