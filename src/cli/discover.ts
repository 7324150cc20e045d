import type { Command } from "commander";
import type { Config } from "../config/config.js";
import { discoverModels } from "../discovery/discover.js";
import type { ModelSpec } from "../discovery/types.js";
import { verdictCachePath } from "../engine/create-pool.js";
import { cachedVerdict, ProbeGate } from "../engine/isolation/probe-gate.js";
import { runtimeOptionsFor } from "../engine/llama.js";
import { servableModels } from "../engine/servability.js";
import { configFrom, type ModelSourceFlags, withModelSources } from "./common.js";
import { modelToJson } from "./model-json.js";
import { bold, cyan, dim, formatBytes, formatParams, green, red, toJson, yellow } from "./output.js";

/** What crash isolation knows of a model file: a cached probe verdict, or this run's probe. */
interface ProbeState {
  ok: boolean;
  reason: string | null;
  probed_at: string | null;
}

function cachedProbe(config: Config, m: ModelSpec): ProbeState | null {
  if (m.format !== "gguf") return null;
  const v = cachedVerdict(verdictCachePath(config), m.files[0]!);
  return v ? { ok: v.ok, reason: v.reason ?? null, probed_at: new Date(v.probedAt).toISOString() } : null;
}

/** `--probe`: tries every servable GGUF in a child process, as `shimmy serve` does before a first load. */
async function probeAll(config: Config, models: ModelSpec[]): Promise<Map<string, ProbeState>> {
  const gate = new ProbeGate({ cachePath: verdictCachePath(config), runtime: runtimeOptionsFor(config), load: config, timeoutMs: config.probeTimeoutMs });
  const states = new Map<string, ProbeState>();
  for (const m of servableModels(models).filter((s) => s.format === "gguf")) {
    try {
      await gate.check(m, m.files[0]!);
      states.set(m.name, { ok: true, reason: null, probed_at: new Date().toISOString() });
    } catch (e) {
      states.set(m.name, { ok: false, reason: (e as Error).message, probed_at: new Date().toISOString() });
    }
  }
  return states;
}

function describeProbe(p: ProbeState | null): string | undefined {
  if (!p) return undefined;
  return p.ok ? `  ${green("probe")}: loads and decodes in a child process (${p.probed_at})` : `  ${red("probe failed")}: ${p.reason}`;
}

function describe(m: ModelSpec, probe: ProbeState | null): string {
  const head = `${bold(m.name)}  ${dim(`[${m.format}${m.summary ? `, ${m.summary.kind}` : ""}]`)}`;
  const lines = [head];
  if (m.error) lines.push(`  ${red("unusable")}: ${m.error}`);
  else if (m.note) lines.push(`  ${yellow("note")}: ${m.note}`);
  lines.push(
    `  architecture ${m.architecture ?? "?"} · params ${formatParams(m.parameters)} · ${m.quantization ?? "?"} · ${formatBytes(m.sizeBytes)} · context ${m.contextLength ?? "?"}`,
  );
  lines.push(`  source ${m.source} · ${m.files.length > 1 ? `${m.files.length} parts, first ` : ""}${m.files[0]}`);
  if (m.lora) lines.push(`  lora ${m.lora}`);
  if (m.projector) lines.push(`  projector ${m.projector}`);
  const p = describeProbe(probe);
  if (p) lines.push(p);
  return lines.join("\n");
}

export function registerDiscover(program: Command): void {
  withModelSources(program.command("discover").description("scan for models and describe each one"))
    .option("--json", "machine-readable output")
    .option("--verbose", "also print debug notes (skipped directories and files)")
    .option("--probe", "load every servable GGUF in a child process and decode a few tokens (as serve does before a first load); verdicts are cached")
    .action(async (flags: ModelSourceFlags & { json?: boolean; verbose?: boolean; probe?: boolean }) => {
      const config = configFrom(flags);
      const result = discoverModels(config);
      const probed = flags.probe ? await probeAll(config, result.models) : new Map<string, ProbeState>();
      const probeOf = (m: ModelSpec) => probed.get(m.name) ?? cachedProbe(config, m);
      if (flags.json) {
        console.log(
          toJson({
            models: result.models.map((m) => ({ ...modelToJson(m), probe: probeOf(m) })),
            locations: result.locations,
            notes: result.notes,
            elapsed_ms: Math.round(result.elapsedMs),
          }),
        );
        return;
      }
      for (const m of result.models) console.log(describe(m, probeOf(m)) + "\n");
      const usable = result.models.filter((m) => !m.error && m.capabilities.length > 0 && probeOf(m)?.ok !== false).length;
      console.log(`${green(String(usable))} servable of ${result.models.length} found in ${Math.round(result.elapsedMs)} ms. Looked in:`);
      for (const l of result.locations) console.log(`  ${l.exists ? cyan("✓") : dim("·")} ${l.source.padEnd(8)} ${l.path}${l.note ? ` (${l.note})` : ""}`);
      if (flags.verbose) for (const n of result.notes) console.log(dim(`  note: ${n}`));
    });
}
