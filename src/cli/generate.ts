import type { Command } from "commander";
import { InvalidArgumentError } from "commander";
import { createModelPool } from "../engine/create-pool.js";
import { tokenRates } from "../engine/rates.js";
import { configFrom, includeTargetPath, type ModelSourceFlags, parsePositiveInt, withEngineOptions, withModelSources } from "./common.js";
import { dim, toJson } from "./output.js";

interface GenerateFlags extends ModelSourceFlags {
  prompt: string;
  chat?: boolean;
  system?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  stop?: string[];
  json?: boolean;
}

function parseNumber(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`"${value}" is not a number in [${min}, ${max}]`);
    return n;
  };
}

function parseInteger(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError(`"${value}" is not an integer`);
  return n;
}

export function registerGenerate(program: Command): void {
  withEngineOptions(withModelSources(program.command("generate").description("generate text with a model, streaming to stdout").argument("<model>", "model name or path")))
    .requiredOption("-p, --prompt <text>", "the prompt")
    .option("--chat", "treat the prompt as a user message and apply the model's chat template")
    .option("--system <text>", "system message (with --chat)")
    .option("-n, --max-tokens <n>", "maximum tokens to generate (default: until the context is full or the model stops)", parsePositiveInt)
    .option("-t, --temperature <t>", "sampling temperature; 0 = greedy", parseNumber(0, 2), 0.8)
    .option("--top-p <p>", "nucleus sampling", parseNumber(0, 1))
    .option("--top-k <k>", "top-k sampling (0 = off)", parseInteger)
    .option("-s, --seed <n>", "seed for reproducible sampling", parseInteger)
    .option("--stop <text...>", "stop strings (not printed)")
    .option("--json", "print one JSON object at the end instead of streaming text")
    .action(async (target: string, flags: GenerateFlags) => {
      const config = includeTargetPath(configFrom(flags, { parallel: 1 }), target);
      const pool = createModelPool(config);
      try {
        await pool.use(target, async (loaded) => {
          const messages = [...(flags.system ? [{ role: "system" as const, content: flags.system }] : []), { role: "user" as const, content: flags.prompt }];
          const prepared = await loaded.prepare({
            model: loaded.spec.name,
            input: flags.chat ? { kind: "chat", messages } : { kind: "text", text: flags.prompt },
            sampling: { temperature: flags.temperature ?? 0.8, topP: flags.topP, topK: flags.topK, seed: flags.seed },
            maxTokens: flags.maxTokens,
            stop: flags.stop ?? [],
          });
          const done = await loaded.generate(prepared, ({ content }) => {
            if (content && !flags.json) process.stdout.write(content);
          });
          const text = done.output.content;
          const { promptPerSecond: promptRate, decodePerSecond: decodeRate } = tokenRates(done.usage, done.timings);
          if (flags.json) {
            console.log(
              toJson({
                model: loaded.spec.name,
                text,
                finish_reason: done.finishReason,
                usage: { prompt_tokens: done.usage.promptTokens, completion_tokens: done.usage.completionTokens },
                prompt_token_ids: prepared.promptTokens,
                token_ids: done.tokenIds,
                load_ms: Math.round(loaded.loadMs),
                prompt_ms: Math.round(done.timings.promptMs * 100) / 100,
                generation_ms: Math.round(done.timings.generationMs * 100) / 100,
                decode_tokens_per_second: decodeRate === null ? null : Math.round(decodeRate * 10) / 10,
              }),
            );
          } else {
            process.stdout.write("\n");
            process.stderr.write(
              dim(
                `${done.usage.promptTokens} prompt tokens (${promptRate === null ? "?" : promptRate.toFixed(0)} tok/s), ` +
                  `${done.usage.completionTokens} generated (${decodeRate === null ? "?" : decodeRate.toFixed(1)} tok/s), finish: ${done.finishReason}, load ${Math.round(loaded.loadMs)} ms\n`,
              ),
            );
          }
        });
      } catch (e) {
        console.error(`shimmy generate: ${(e as Error).message}`);
        process.exitCode = 1;
      } finally {
        await pool.close();
      }
    });
}
