/**
 * Bundles the CLI and its pure-JS dependencies (fastify, commander, ws, …) into one ES module,
 * dist/cli/shimmy.bundle.mjs, which the `shimmy` launcher loads when it exists. Resolving and
 * compiling ~200 separate modules was most of `shimmy serve`'s start-up: measured on the 2-core
 * VM, cold start to /health 200 went from a median of 266 ms to 193 ms (8 interleaved runs each).
 * The bundle sits next to main.js so its relative paths (../../package.json) stay the same.
 *
 * Left out of the bundle: node-llama-cpp (native addon, loads its binaries relative to itself)
 * and the modules Shimmy loads only when needed (Jinja, the progress bar, Ajv), so they still
 * cost nothing at start-up; ws's optional native helpers.
 */
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

await build({
  entryPoints: [join(root, "src", "cli", "main.ts")],
  outfile: join(root, "dist", "cli", "shimmy.bundle.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  sourcemap: true,
  external: ["node-llama-cpp", "@huggingface/jinja", "cli-progress", "ajv", "bufferutil", "utf-8-validate"],
  // CommonJS dependencies call require() for Node's built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as __shimmyCreateRequire } from 'node:module'; const require = __shimmyCreateRequire(import.meta.url);" },
  logLevel: "warning",
});
