import { type Command, Option } from "commander";
import { existsSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { type OutputType } from "../convert/quantize.js";
import { SYNTHETIC_SHAPES, type SyntheticSize, syntheticLlamaGguf } from "../convert/synthetic-gguf.js";
import { writeSyntheticHfLlama } from "../convert/synthetic-hf.js";
import { configFrom } from "./common.js";
import { formatBytes, green, toJson } from "./output.js";

interface SynthFlags {
  size: SyntheticSize;
  format: "gguf" | "hf";
  type: OutputType;
  dtype: "BF16" | "F16" | "F32";
  output?: string;
  seed: number;
  tokenizerFrom?: string;
  json?: boolean;
}

/** Token ids a tokenizer.json uses (its vocabulary and added tokens): the synthetic model's vocabulary size. */
function tokenizerVocabSize(folder: string): number {
  const path = join(folder, "tokenizer.json");
  if (!existsSync(path)) throw new Error(`${path} not found: --tokenizer-from names a Hugging Face folder with tokenizer.json and tokenizer_config.json`);
  const json = JSON.parse(readFileSync(path, "utf8")) as { model?: { vocab?: Record<string, number> | [string, number][] }; added_tokens?: { id: number }[] };
  const vocab = json.model?.vocab;
  const ids = Array.isArray(vocab) ? vocab.map((_, i) => i) : Object.values(vocab ?? {});
  for (const t of json.added_tokens ?? []) ids.push(t.id);
  if (ids.length === 0) throw new Error(`${path} has no vocabulary`);
  return Math.max(...ids) + 1;
}

/**
 * `shimmy synth`: the random-weight llama models the benchmarks use (gibberish by design, made
 * without downloads), so anyone can reproduce docs/performance.md's figures on their machine.
 */
export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("write a random-weight llama model of a given size (the benchmarks' model; its output is gibberish)")
    .addOption(new Option("--size <size>", "parameter count").choices(Object.keys(SYNTHETIC_SHAPES)).default("100m"))
    .addOption(new Option("--format <format>", "a GGUF file, or a Hugging Face SafeTensors folder (needs --tokenizer-from)").choices(["gguf", "hf"]).default("gguf"))
    .addOption(new Option("--type <type>", "GGUF weight type").choices(["f32", "f16", "q8_0", "q4_0"]).default("q8_0"))
    .addOption(new Option("--dtype <dtype>", "SafeTensors weight type (--format hf)").choices(["BF16", "F16", "F32"]).default("BF16"))
    .option("-o, --output <dir>", "folder to write into (default: Shimmy's cache, synthetic/)")
    .option("--seed <n>", "weights seed", (v) => Number.parseInt(v, 10), 1)
    .option("--tokenizer-from <dir>", "an HF folder whose tokenizer.json / tokenizer_config.json the --format hf model uses")
    .option("--json", "machine-readable result")
    .action(async (flags: SynthFlags) => {
      try {
        const started = performance.now();
        const dir = resolve(flags.output ?? join(configFrom({}).cacheDir, "synthetic"));
        let path: string;
        if (flags.format === "gguf") {
          path = await syntheticLlamaGguf(dir, flags.size, flags.type, flags.seed);
        } else {
          if (!flags.tokenizerFrom) throw new Error("--format hf needs --tokenizer-from DIR (an HF folder with tokenizer.json): a SafeTensors folder carries its tokenizer as files");
          const tokenizerFrom = resolve(flags.tokenizerFrom);
          const vocab = tokenizerVocabSize(tokenizerFrom);
          path = join(dir, `synthetic-llama-hf-${flags.size}-${flags.dtype.toLowerCase()}-s${flags.seed}`);
          if (!existsSync(path)) {
            // Written beside its final name and renamed: a folder found half-written would be converted half-written.
            const partial = `${path}.partial-${process.pid}`;
            rmSync(partial, { recursive: true, force: true });
            writeSyntheticHfLlama(partial, { ...SYNTHETIC_SHAPES[flags.size], vocab, dtype: flags.dtype, seed: flags.seed, tokenizerFrom });
            renameSync(partial, path);
          }
        }
        const size = flags.format === "gguf" ? statSync(path).size : statSync(join(path, "model.safetensors")).size;
        const summary = { ok: true, path, format: flags.format, size: flags.size, size_bytes: size, elapsed_ms: Math.round(performance.now() - started) };
        if (flags.json) console.log(toJson(summary));
        else console.log(`${green("ok")} ${path} (${formatBytes(size)}, ${summary.elapsed_ms} ms)`);
      } catch (e) {
        if (flags.json) console.log(toJson({ ok: false, error: (e as Error).message }));
        else console.error(`shimmy synth: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
