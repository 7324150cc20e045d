import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The folder of the package this code runs from: the nearest above this module with a
 * package.json. The same whether it runs from src/ (tsx), dist/ (tsc output) or the bundled CLI
 * in dist/cli/, which sit at different depths. Undefined outside any package.
 */
export function packageRoot(from = dirname(fileURLToPath(import.meta.url))): string | undefined {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, "package.json"))) return dir;
    if (dirname(dir) === dir) return undefined;
  }
}
