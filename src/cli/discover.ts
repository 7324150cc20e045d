import type { Command } from "commander";
import { discoverModels } from "../discovery/discover.js";
import type { ModelSpec } from "../discovery/types.js";
import { configFrom, type ModelSourceFlags, withModelSources } from "./common.js";
import { modelToJson } from "./model-json.js";
import { bold, cyan, dim, formatBytes, formatParams, green, red, toJson, yellow } from "./output.js";

function describe(m: ModelSpec): string {
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
  return lines.join("\n");
}

export function registerDiscover(program: Command): void {
  withModelSources(program.command("discover").description("scan for models and describe each one"))
    .option("--json", "machine-readable output")
    .option("--verbose", "also print debug notes (skipped directories and files)")
    .action((flags: ModelSourceFlags & { json?: boolean; verbose?: boolean }) => {
      const result = discoverModels(configFrom(flags));
      if (flags.json) {
        console.log(
          toJson({
            models: result.models.map(modelToJson),
            locations: result.locations,
            notes: result.notes,
            elapsed_ms: Math.round(result.elapsedMs),
          }),
        );
        return;
      }
      for (const m of result.models) console.log(describe(m) + "\n");
      const usable = result.models.filter((m) => !m.error && m.capabilities.length > 0).length;
      console.log(`${green(String(usable))} servable of ${result.models.length} found in ${Math.round(result.elapsedMs)} ms. Looked in:`);
      for (const l of result.locations) console.log(`  ${l.exists ? cyan("✓") : dim("·")} ${l.source.padEnd(8)} ${l.path}${l.note ? ` (${l.note})` : ""}`);
      if (flags.verbose) for (const n of result.notes) console.log(dim(`  note: ${n}`));
    });
}
