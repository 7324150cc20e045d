import type { Command } from "commander";
import { createModelPool } from "../engine/create-pool.js";
import { configFrom, includeTargetPath, type ModelSourceFlags, withEngineOptions, withModelSources } from "./common.js";
import { describeThreads, green, red, toJson } from "./output.js";

export function registerProbe(program: Command): void {
  withEngineOptions(withModelSources(program.command("probe").description("load a model for real and evaluate one token").argument("<model>", "model name or path")))
    .option("--json", "machine-readable output")
    .action(async (target: string, flags: ModelSourceFlags & { json?: boolean }) => {
      const config = includeTargetPath(configFrom(flags, { parallel: 1 }), target);
      // A small context keeps the probe about loading, not about allocating a large KV cache.
      config.ctxCap = Math.min(config.ctxCap, 512);
      const pool = createModelPool(config);
      const started = performance.now();
      try {
        await pool.use(target, async (loaded) => {
          // BOS alone where the model has one; otherwise a one-word prompt.
          const text = loaded.model.tokens.bos !== null && loaded.model.tokens.shouldPrependBosToken ? "" : "Hello";
          const prepared = await loaded.prepare({ model: loaded.spec.name, input: { kind: "text", text }, sampling: { temperature: 0 }, maxTokens: 1, stop: [] });
          const { done } = await loaded.complete(prepared);
          const token = done.tokenIds[0];
          const evalMs = done.timings.promptMs;
          const result = {
            model: loaded.spec.name,
            ok: true,
            load_ms: Math.round(loaded.loadMs),
            eval_ms: Math.round(evalMs * 10) / 10,
            total_ms: Math.round(performance.now() - started),
            threads: config.threads,
            batch_threads: config.batchThreads,
            gpu: config.gpu,
            first_token: token ?? null,
            first_token_text: token === undefined ? null : loaded.model.detokenize([token as never]),
          };
          if (flags.json) console.log(toJson(result));
          else console.log(`${result.model}: loaded in ${result.load_ms} ms, one token in ${result.eval_ms} ms (${describeThreads(config)}) ${green("ok")}`);
        });
      } catch (e) {
        const message = (e as Error).message;
        if (flags.json) console.log(toJson({ model: target, ok: false, error: message }));
        else console.error(`${target}: ${red("failed")}: ${message}`);
        process.exitCode = 1;
      } finally {
        await pool.close();
      }
    });
}
