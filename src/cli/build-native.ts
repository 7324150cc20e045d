import type { Command } from "commander";
import { buildNativeRuntime, NATIVE_CMAKE_OPTIONS } from "../engine/llama.js";
import { configFrom } from "./common.js";
import { green, toJson } from "./output.js";

export function registerBuildNative(program: Command): void {
  program
    .command("build-native")
    .description("compile llama.cpp's CPU backend for this machine (native arch, OpenMP) from the source bundled with node-llama-cpp; used by default afterwards where no GPU may be present (--no-native opts out)")
    .option("--json", "machine-readable result")
    .action(async (flags: { json?: boolean }) => {
      const config = configFrom({});
      const started = performance.now();
      try {
        const llama = await buildNativeRuntime(config.threads);
        const result = { ok: true, build: llama.buildType, cmake_options: NATIVE_CMAKE_OPTIONS, system_info: llama.systemInfo, seconds: Math.round((performance.now() - started) / 1000) };
        await llama.dispose();
        if (flags.json) console.log(toJson(result));
        else console.log(`${green("ok")} native build ready in ${result.seconds} s; Shimmy uses it from now on where no GPU may be present (\`--native\` to insist, \`--no-native\` to opt out)`);
      } catch (e) {
        if (flags.json) console.log(toJson({ ok: false, error: (e as Error).message }));
        else console.error(`shimmy build-native: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
