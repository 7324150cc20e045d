/**
 * Builds the chat page (web/, docs/web.md) into dist/web: index.html plus one JS and one CSS
 * file under dist/web/ui/, named by content hash so the server can let browsers cache them
 * forever. Everything the page uses is bundled: it works offline and loads nothing from
 * elsewhere. The server reads these files at start-up (src/server/web/assets.ts).
 */
import { build } from "esbuild";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const outDir = join(root, "dist", "web");

// Old hashed files would otherwise pile up and be served next to the new ones.
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });

const result = await build({
  entryPoints: [join(root, "web", "src", "main.tsx")],
  outdir: join(outDir, "ui"),
  entryNames: "[name]-[hash]",
  bundle: true,
  minify: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  jsx: "automatic",
  jsxImportSource: "preact",
  tsconfig: join(root, "web", "tsconfig.json"),
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
const script = outputs.find((f) => f.endsWith(".js"));
const style = outputs.find((f) => f.endsWith(".css"));
if (script === undefined || style === undefined) throw new Error(`the web build wrote no script or no style sheet: ${outputs.join(", ")}`);

writeFileSync(
  join(outDir, "index.html"),
  `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Shimmy</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/${style}">
<script type="module" src="/ui/${script}"></script>
</head>
<body>
<noscript>This page needs JavaScript. The APIs are under /v1 and /api.</noscript>
<div id="app"></div>
</body>
</html>
`,
);
