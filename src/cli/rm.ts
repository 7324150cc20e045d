import type { Command } from "commander";
import { deleteModel } from "../pull/delete.js";
import { findByOllamaName } from "../registry/ollama-names.js";
import { ModelNotFoundError, Registry } from "../registry/registry.js";
import { configFrom, includeTargetPath, type ModelSourceFlags, withModelSources } from "./common.js";
import { green } from "./output.js";

export function registerRm(program: Command): void {
  withModelSources(
    program
      .command("rm")
      .description("delete a pulled model (its Hugging Face cache entry or Ollama manifest, and blobs nothing else uses)")
      .argument("<model>", "a model name (as `shimmy list` shows it) or path"),
  )
    .option("--force", "also delete a model file or folder that Shimmy did not download")
    .option("--json", "machine-readable result")
    .action(async (target: string, flags: ModelSourceFlags & { force?: boolean; json?: boolean }) => {
      try {
        const registry = new Registry(includeTargetPath(configFrom(flags), target));
        const spec = findByOllamaName(registry, target);
        if (!spec) throw new ModelNotFoundError(target, registry.all().map((m) => m.name));
        const result = await deleteModel(spec, { force: flags.force, requestedName: target });
        if (flags.json) console.log(JSON.stringify({ ok: true, model: spec.name, ...result }));
        else console.log(`${green("deleted")} ${spec.name} (${result.removed.length + result.blobsRemoved.length} entries removed)`);
      } catch (e) {
        if (flags.json) console.log(JSON.stringify({ ok: false, error: (e as Error).message }));
        console.error(`shimmy rm: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
