import type { Command } from "commander";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { Registry } from "../registry/registry.js";
import { inspectModel } from "../registry/inspect.js";
import { configFrom, type ModelSourceFlags, withModelSources } from "./common.js";
import { bold, dim, formatBytes, formatParams, red, toJson } from "./output.js";

const UNQUANTIZED = new Set(["F32", "F16", "BF16"]);
/** Size over its Q8_0 copy's (34 bytes per 32 weights). */
const q8Ratio = (quantization: string): number => ((quantization === "F32" ? 4 : 2) * 32) / 34;
/** How to get a Q8_0 copy: a SafeTensors folder converts, a GGUF re-encodes. */
const shrinkCommand = (format: string, path: string): string => (format === "safetensors" ? `\`shimmy convert ${path} --type q8_0\`` : `\`shimmy quantize ${path} OUT.gguf --type q8_0\``);

export function registerInspect(program: Command): void {
  withModelSources(program.command("inspect").description("everything the file readers know about a model").argument("<model>", "model name or path"))
    .option("--json", "machine-readable output")
    .action((target: string, flags: ModelSourceFlags & { json?: boolean }) => {
      const spec = new Registry(configFrom(flags)).find(target);
      if (!spec && !existsSync(resolve(target))) {
        console.error(`shimmy: no model named "${target}" and no such file (see \`shimmy list\`)`);
        process.exitCode = 1;
        return;
      }
      const report = inspectModel(spec ?? resolve(target));
      if (flags.json) {
        console.log(toJson({ name: spec?.name ?? null, ...report }));
      } else {
        const s = report.summary;
        console.log(bold(spec?.name ?? report.path));
        console.log(`  path          ${report.path}${report.files.length > 1 ? ` (+${report.files.length - 1} more files)` : ""}`);
        if (s) {
          console.log(`  format        ${report.format}${report.gguf ? ` v${report.gguf.version}` : ""} · ${s.kind}`);
          console.log(`  architecture  ${s.architecture ?? "?"}${s.displayName ? ` (${s.displayName})` : ""}`);
          console.log(`  parameters    ${formatParams(s.parameters)} (${s.parameters})`);
          console.log(`  quantization  ${s.quantization ?? "?"}${s.quantization && UNQUANTIZED.has(s.quantization) ? dim(`  (unquantized: ${shrinkCommand(report.format, report.path)} makes it ~${q8Ratio(s.quantization).toFixed(1)}× smaller)`) : ""}`);
          console.log(`  context       ${s.contextLength ?? "?"} · vocab ${s.vocabSize ?? "?"} · embedding ${s.embeddingLength ?? "?"} · layers ${s.layers ?? "?"}`);
          if (s.adapter) console.log(`  adapter       ${s.adapter.type}, base ${s.adapter.baseModelName ?? s.adapter.baseModelRepo ?? "unknown"}`);
        }
        if (report.tokenizer) console.log(`  tokenizer     ${report.tokenizer.kind}${report.tokenizer.detail ? ` (${report.tokenizer.detail})` : ""}, ${report.tokenizer.vocabSize ?? "?"} tokens`);
        if (report.tensors) {
          const types = Object.entries(report.tensors.byType).map(([t, v]) => `${t}×${v.count} (${formatBytes(v.bytes)})`).join(", ");
          console.log(`  tensors       ${report.tensors.count}: ${types}`);
          for (const t of report.tensors.sample) console.log(dim(`                ${t.name} ${JSON.stringify(t.shape)} ${t.type}`));
        }
        console.log(`  chat template ${report.chatTemplate ? `${report.chatTemplate.length} chars` : "none"}`);
        if (report.chatTemplate) console.log(dim(report.chatTemplate.split("\n").map((l) => `    ${l}`).join("\n")));
        console.log(`  metadata (${Object.keys(report.metadata).length} keys)`);
        for (const [k, v] of Object.entries(report.metadata)) {
          if (k === "tokenizer.chat_template") continue;
          console.log(`    ${k} = ${JSON.stringify(v)}`);
        }
        for (const e of report.errors) console.log(`  ${red("error")} ${e}`);
      }
      if (report.errors.length > 0) process.exitCode = 1;
    });
}
