import type { Command } from "commander";
import { servableModels } from "../engine/servability.js";
import { Registry } from "../registry/registry.js";
import { configFrom, type ModelSourceFlags, withModelSources } from "./common.js";
import { modelToJson } from "./model-json.js";
import { formatBytes, formatParams, red, table, toJson } from "./output.js";

export function registerList(program: Command): void {
  withModelSources(program.command("list").description("list known models, compactly"))
    .option("--short", "names only, one per line (servable models)")
    .option("--json", "machine-readable output")
    .action((flags: ModelSourceFlags & { short?: boolean; json?: boolean }) => {
      const registry = new Registry(configFrom(flags));
      if (flags.short) {
        for (const m of servableModels(registry.all())) console.log(m.name);
        return;
      }
      if (flags.json) {
        console.log(toJson(registry.all().map(modelToJson)));
        return;
      }
      const rows = [["NAME", "FORMAT", "ARCH", "PARAMS", "QUANT", "SIZE", "CTX", "SOURCE"]];
      for (const m of registry.all()) {
        rows.push([
          m.error ? red(`${m.name} (unusable)`) : m.name,
          m.format,
          m.architecture ?? "?",
          formatParams(m.parameters),
          m.quantization ?? "?",
          formatBytes(m.sizeBytes),
          String(m.contextLength ?? "?"),
          m.source,
        ]);
      }
      console.log(rows.length > 1 ? table(rows) : "no models found (try --model-dirs DIR, or `shimmy discover` to see where Shimmy looked)");
    });
}
