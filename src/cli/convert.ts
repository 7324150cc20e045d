import { type Command, Option } from "commander";
import { existsSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { ConversionCache } from "../convert/cache.js";
import { type ConvertProgress, convertHfFolder, type RequestedType } from "../convert/convert.js";
import { OUTPUT_TYPES } from "../convert/quantize.js";
import { ModelNotFoundError, Registry } from "../registry/registry.js";
import { configFrom, type ModelSourceFlags, withModelSources } from "./common.js";
import { formatBytes, green, toJson } from "./output.js";

interface ConvertFlags extends ModelSourceFlags {
  output?: string;
  type: RequestedType;
  force?: boolean;
  json?: boolean;
}

/** A progress bar on a terminal (tensors, bytes, rate); nothing otherwise. */
export async function progressReporter(enabled: boolean): Promise<{ update: (p: ConvertProgress) => void; stop: () => void }> {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const { SingleBar } = await import("cli-progress");
  const started = performance.now();
  const bar = new SingleBar({ format: "converting [{bar}] {value}/{total} tensors · {read} · {rate}/s · {tensor}", hideCursor: true, clearOnComplete: false });
  let begun = false;
  return {
    update(p) {
      if (!begun) {
        bar.start(p.total, 0, { read: "0 B", rate: "0 B", tensor: "" });
        begun = true;
      }
      const seconds = (performance.now() - started) / 1000;
      bar.update(p.index, { read: `${formatBytes(p.bytesRead)} of ${formatBytes(p.bytesTotal)}`, rate: formatBytes(seconds > 0 ? Math.round(p.bytesRead / seconds) : 0), tensor: p.tensor });
    },
    stop: () => (begun ? bar.stop() : undefined),
  };
}

export function registerConvert(program: Command): void {
  withModelSources(program.command("convert").description("convert a Hugging Face SafeTensors folder to GGUF").argument("<model>", "HF folder, or the name of a discovered safetensors model"))
    .option("-o, --output <file>", "write here instead of Shimmy's cache")
    .addOption(new Option("--type <type>", "output type (auto keeps the checkpoint's precision)").choices(["auto", ...OUTPUT_TYPES]).default("auto"))
    .option("--force", "overwrite --output if it exists")
    .option("--json", "machine-readable result")
    .action(async (target: string, flags: ConvertFlags) => {
      const config = configFrom(flags);
      const progress = await progressReporter(process.stderr.isTTY === true && !flags.json);
      try {
        const path = resolve(target);
        const folder = existsSync(path) && statSync(path).isDirectory() ? path : safetensorsFolderOf(new Registry(config), target);
        if (!existsSync(folder) || !statSync(folder).isDirectory()) throw new Error(`${target} is not a Hugging Face model folder`);
        const started = performance.now();
        let output: string;
        let details: Record<string, unknown>;
        if (flags.output) {
          output = resolve(flags.output);
          if (existsSync(output) && !flags.force) throw new Error(`${output} exists; pass --force to overwrite it`);
          const r = await convertHfFolder(folder, output, flags.type, progress.update);
          details = { architecture: r.architecture, type: r.outType, tensors: r.tensors, cached: false, skipped: r.skipped };
          if (!flags.json) for (const line of r.skipped) console.error(`note: ${line}`);
        } else {
          const cache = new ConversionCache(config.cacheDir);
          const cached = existsSync(cache.pathFor(folder, flags.type));
          output = await cache.ensure(folder, flags.type, progress.update);
          details = { cached };
        }
        progress.stop();
        const size = statSync(output).size;
        const summary = { ok: true, source: folder, output, size_bytes: size, elapsed_ms: Math.round(performance.now() - started), ...details };
        if (flags.json) console.log(toJson(summary));
        else console.log(`${green("ok")} ${output} (${formatBytes(size)}, ${summary.elapsed_ms} ms)`);
      } catch (e) {
        progress.stop();
        if (flags.json) console.log(toJson({ ok: false, error: (e as Error).message }));
        else console.error(`shimmy convert: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}

/** A discovered model's folder; an unknown name offers the SafeTensors models found. */
function safetensorsFolderOf(registry: Registry, name: string): string {
  const spec = registry.find(name);
  if (!spec) throw new ModelNotFoundError(name, registry.all().filter((m) => m.format === "safetensors").map((m) => m.name));
  return spec.files[0]!;
}
