import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * How to start a worker thread whose entry module is `modulePath` (relative to src/, no
 * extension): the compiled .js under dist/ (also from the CLI bundle in dist/cli/), or the
 * TypeScript source through tsx when Shimmy runs from source (tests, `npm run` scripts).
 * Pass the result to `new Worker(code, { eval })`.
 */
export function workerThreadEntry(modulePath: string, here = fileURLToPath(import.meta.url)): { code: string; eval: boolean } {
  const root = dirname(here);
  if (here.endsWith(".ts")) {
    const entry = JSON.stringify(new URL(`file://${join(root, `${modulePath}.ts`)}`).href);
    return { code: `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((api) => { api.register(); return import(${entry}); });`, eval: true };
  }
  // This module sits at the root of dist/, or is bundled into dist/cli/shimmy.bundle.mjs.
  const candidates = [join(root, `${modulePath}.js`), join(root, "..", `${modulePath}.js`)];
  const entry = candidates.find((c) => existsSync(c));
  if (!entry) throw new Error(`the worker entry ${modulePath} is missing (looked for ${candidates.join(", ")}); rebuild Shimmy`);
  return { code: entry, eval: false };
}
