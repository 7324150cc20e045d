import { type Command, InvalidArgumentError, Option } from "commander";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ConversionCache } from "../convert/cache.js";
import { type ConvertProgress, convertHfFolder, type RequestedType } from "../convert/convert.js";
import { DEFAULT_MAX_SHARD_BYTES, EXPORT_TYPES, type ExportType, exportGguf } from "../convert/export/export.js";
import { OUTPUT_TYPES } from "../convert/quantize.js";
import { ModelNotFoundError, Registry } from "../registry/registry.js";
import { configFrom, type ModelSourceFlags, withModelSources } from "./common.js";
import { formatBytes, green, toJson } from "./output.js";

interface ConvertFlags extends ModelSourceFlags {
  output?: string;
  type: RequestedType;
  to?: "gguf" | "safetensors";
  shardSize: number;
  force?: boolean;
  json?: boolean;
}

const SIZE_UNITS: Record<string, number> = { "": 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** "5GB", "500MiB", "2000000" → bytes. */
export function parseByteSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : 0;
  if (bytes < 1) throw new InvalidArgumentError(`"${value}" is not a size (e.g. 5GB, 500MB, 2GiB)`);
  return bytes;
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
  withModelSources(program.command("convert").description("convert a Hugging Face SafeTensors folder to GGUF, or a GGUF to a SafeTensors folder").argument("<model>", "HF folder, GGUF file, or the name of a discovered model"))
    .option("-o, --output <path>", "GGUF file to write instead of Shimmy's cache; with --to safetensors, the folder to write")
    .addOption(new Option("--to <format>", "output format (default: gguf for an HF folder, safetensors for a GGUF)").choices(["gguf", "safetensors"]))
    .addOption(new Option("--type <type>", "output type (auto keeps the checkpoint's precision; exporting to safetensors: auto, f32, f16 or bf16)").choices(["auto", ...OUTPUT_TYPES]).default("auto"))
    .option("--shard-size <size>", "with --to safetensors: largest weights file before splitting into shards", parseByteSize, DEFAULT_MAX_SHARD_BYTES)
    .option("--force", "overwrite --output if it exists (write into a non-empty folder)")
    .option("--json", "machine-readable result")
    .action(async (target: string, flags: ConvertFlags) => {
      const config = configFrom(flags);
      const progress = await progressReporter(process.stderr.isTTY === true && !flags.json);
      try {
        const path = resolve(target);
        let found: Registry | undefined;
        const registry = (): Registry => (found ??= new Registry(config));
        const gguf = ggufInput(registry, target, path);
        if (gguf !== undefined || flags.to === "safetensors") {
          await exportToSafetensors(gguf, target, flags, progress);
          return;
        }
        const folder = existsSync(path) && statSync(path).isDirectory() ? path : safetensorsFolderOf(registry(), target);
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

/** Whether a file starts with GGUF's magic bytes (any other file is not an export input). */
function hasGgufMagic(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const magic = Buffer.alloc(4);
    return readSync(fd, magic, 0, 4, 0) === 4 && magic.toString("latin1") === "GGUF";
  } finally {
    closeSync(fd);
  }
}

/** The GGUF file a target names (a .gguf path, or a discovered GGUF model), else undefined. */
function ggufInput(registry: () => Registry, target: string, path: string): string | undefined {
  if (existsSync(path)) return statSync(path).isFile() && hasGgufMagic(path) ? path : undefined;
  const spec = registry().find(target);
  return spec?.format === "gguf" ? spec.files[0] : undefined;
}

async function exportToSafetensors(gguf: string | undefined, target: string, flags: ConvertFlags, progress: Awaited<ReturnType<typeof progressReporter>>): Promise<void> {
  if (!gguf) throw new Error(`${target} is not a GGUF file; --to safetensors exports a GGUF`);
  if (flags.to === "gguf") throw new Error(`${target} is already a GGUF; use --to safetensors (or \`shimmy quantize\` to re-encode it)`);
  if (!flags.output) throw new Error("--to safetensors needs -o DIR, the folder to write");
  if (!(EXPORT_TYPES as readonly string[]).includes(flags.type)) throw new Error(`--type ${flags.type} cannot be written to SafeTensors; use ${EXPORT_TYPES.join(", ")}`);
  const r = exportGguf(gguf, resolve(flags.output), { type: flags.type as ExportType, maxShardBytes: flags.shardSize, force: flags.force, onProgress: progress.update });
  progress.stop();
  const size = r.files.reduce((n, f) => n + statSync(join(r.output, f)).size, 0);
  const summary = { ok: true, source: gguf, output: r.output, format: "safetensors", size_bytes: size, elapsed_ms: Math.round(r.elapsedMs), architecture: r.architecture, hf_architecture: r.hfArchitecture, type: flags.type, tensors: r.tensors, dtypes: r.dtypes, files: r.files, notes: r.notes };
  if (flags.json) console.log(toJson(summary));
  else {
    for (const note of r.notes) console.error(`note: ${note}`);
    console.log(`${green("ok")} ${r.output} (${r.hfArchitecture}, ${r.files.length} files, ${formatBytes(size)}, ${summary.elapsed_ms} ms)`);
  }
}

/** A discovered model's folder; an unknown name offers the SafeTensors models found. */
function safetensorsFolderOf(registry: Registry, name: string): string {
  const spec = registry.find(name);
  if (!spec) throw new ModelNotFoundError(name, registry.all().filter((m) => m.format === "safetensors").map((m) => m.name));
  return spec.files[0]!;
}
