import type { Command } from "commander";
import type { Token } from "node-llama-cpp";
import { getRuntime } from "../engine/llama.js";
import { Registry } from "../registry/registry.js";
import { configFrom, includeTargetPath, type ModelSourceFlags, withEngineOptions, withModelSources } from "./common.js";
import { green, red, toJson } from "./output.js";

export function registerProbe(program: Command): void {
  withEngineOptions(withModelSources(program.command("probe").description("load a model for real and evaluate one token").argument("<model>", "model name or path")))
    .option("--json", "machine-readable output")
    .action(async (target: string, flags: ModelSourceFlags & { json?: boolean }) => {
      const config = includeTargetPath(configFrom(flags), target);
      const started = performance.now();
      try {
        const spec = new Registry(config).get(target);
        if (spec.error) throw new Error(spec.error);
        if (spec.format !== "gguf") throw new Error(`${spec.name} is a ${spec.format} model; ${spec.note ?? "it cannot be loaded directly"}`);
        const llama = await getRuntime({ gpu: config.gpu, threads: config.threads });
        const loadStart = performance.now();
        const model = await llama.loadModel({ modelPath: spec.files[0]! });
        const context = await model.createContext({
          contextSize: Math.min(model.trainContextSize, 512),
          threads: config.threads,
          lora: spec.lora ? { adapters: [{ filePath: spec.lora }] } : undefined,
        });
        const loadMs = performance.now() - loadStart;
        const sequence = context.getSequence();
        const input = model.tokens.bos !== null ? [model.tokens.bos] : model.tokenize("Hello");
        const evalStart = performance.now();
        let token: Token | undefined;
        for await (const t of sequence.evaluate(input, { temperature: 0 })) {
          token = t;
          break;
        }
        const evalMs = performance.now() - evalStart;
        const result = {
          model: spec.name,
          ok: true,
          load_ms: Math.round(loadMs),
          eval_ms: Math.round(evalMs * 10) / 10,
          total_ms: Math.round(performance.now() - started),
          threads: config.threads,
          gpu: llama.gpu,
          first_token: token ?? null,
          first_token_text: token === undefined ? null : model.detokenize([token]),
        };
        await context.dispose();
        await model.dispose();
        if (flags.json) console.log(toJson(result));
        else console.log(`${spec.name}: loaded in ${result.load_ms} ms, one token in ${result.eval_ms} ms (${config.threads} thread${config.threads > 1 ? "s" : ""}, ${llama.gpu || "cpu"}) ${green("ok")}`);
      } catch (e) {
        const message = (e as Error).message;
        if (flags.json) console.log(toJson({ model: target, ok: false, error: message }));
        else console.error(`${target}: ${red("failed")}: ${message}`);
        process.exitCode = 1;
      }
    });
}
