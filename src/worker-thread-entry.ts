import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The file of an entry module (`modulePath`, relative to src/, no extension) for a worker thread
 * or a child process: the compiled .js under dist/ (also from the CLI bundle in dist/cli/), or the
 * TypeScript source (`tsx: true`: it runs through tsx) when Shimmy runs from source (tests, `npm
 * run` scripts).
 */
export function entryModule(modulePath: string, here = fileURLToPath(import.meta.url)): { path: string; tsx: boolean } {
  const root = dirname(here);
  if (here.endsWith(".ts")) return { path: join(root, `${modulePath}.ts`), tsx: true };
  // This module sits at the root of dist/, or is bundled into dist/cli/shimmy.bundle.mjs.
  const candidates = [join(root, `${modulePath}.js`), join(root, "..", `${modulePath}.js`)];
  const path = candidates.find((c) => existsSync(c));
  if (!path) throw new Error(`the entry ${modulePath} is missing (looked for ${candidates.join(", ")}); rebuild Shimmy`);
  return { path, tsx: false };
}

/** How to start a worker thread whose entry module is `modulePath`: pass the result to `new Worker(code, { eval })`. */
export function workerThreadEntry(modulePath: string): { code: string; eval: boolean } {
  const { path, tsx } = entryModule(modulePath);
  if (!tsx) return { code: path, eval: false };
  const entry = JSON.stringify(new URL(`file://${path}`).href);
  return { code: `import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((api) => { api.register(); return import(${entry}); });`, eval: true };
}
