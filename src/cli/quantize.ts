import { type Command, Option } from "commander";
import { statSync } from "node:fs";
import { resolve } from "node:path";
import { OUTPUT_TYPES, type OutputType } from "../convert/quantize.js";
import { quantizeGguf } from "../convert/quantize-gguf.js";
import { progressReporter } from "./convert.js";
import { formatBytes, green, toJson } from "./output.js";

interface QuantizeFlags {
  type: OutputType;
  json?: boolean;
}

/** `shimmy quantize`: a float GGUF (F32 / F16 / BF16) re-encoded as Q8_0, Q4_0 or another float type. */
export function registerQuantize(program: Command): void {
  program
    .command("quantize")
    .description("re-encode a float GGUF (F32, F16 or BF16 tensors) as q8_0, q4_0, f16, bf16 or f32")
    .argument("<input>", "GGUF file to read")
    .argument("<output>", "GGUF file to write (must not exist)")
    .addOption(new Option("--type <type>", "output type").choices([...OUTPUT_TYPES]).default("q8_0"))
    .option("--json", "machine-readable result")
    .action(async (input: string, output: string, flags: QuantizeFlags) => {
      const progress = await progressReporter(process.stderr.isTTY === true && !flags.json);
      try {
        const r = await quantizeGguf(resolve(input), resolve(output), flags.type, progress.update);
        progress.stop();
        const before = statSync(resolve(input)).size;
        const after = statSync(r.output).size;
        const summary = { ok: true, input: resolve(input), output: r.output, type: r.outType, tensors: r.tensors, size_bytes: after, input_bytes: before, elapsed_ms: Math.round(r.elapsedMs) };
        if (flags.json) console.log(toJson(summary));
        else console.log(`${green("ok")} ${r.output} (${formatBytes(after)}, ${(before / after).toFixed(1)}× smaller than the input, ${summary.elapsed_ms} ms)`);
      } catch (e) {
        progress.stop();
        if (flags.json) console.log(toJson({ ok: false, error: (e as Error).message }));
        else console.error(`shimmy quantize: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
