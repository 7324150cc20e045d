/** Terminal output helpers: colours only on a TTY without NO_COLOR, human sizes. */
const useColor = (): boolean => process.stdout.isTTY === true && !("NO_COLOR" in process.env) && process.env.TERM !== "dumb";

const wrap = (code: number) => (s: string): string => (useColor() ? `\x1b[${code}m${s}\x1b[0m` : s);
export const bold = wrap(1);
export const dim = wrap(2);
export const red = wrap(31);
export const green = wrap(32);
export const yellow = wrap(33);
export const cyan = wrap(36);

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function formatParams(n: number | undefined): string {
  if (n === undefined) return "?";
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

/** Stable JSON for --json: bigints as strings, Dates as ISO strings, Maps as objects. */
export function toJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) => {
      if (typeof v === "bigint") return v.toString();
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    },
    2,
  );
}

export function table(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex
  const visible = (s: string): number => s.replace(/\x1b\[[0-9;]*m/g, "").length;
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => visible(r[c] ?? ""))));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell + " ".repeat(widths[c]! - visible(cell)))).join("  ")).join("\n");
}

/** "1 thread, 2 for batches" — how a Config splits its CPU threads. */
export function describeThreads(config: { threads: number; threadsAlternative?: number; batchThreads: number }): string {
  const plural = (n: number) => `${n} thread${n > 1 ? "s" : ""}`;
  if (config.threadsAlternative !== undefined) return `${config.threads} or ${plural(config.threadsAlternative)} for one-token steps (whichever measures faster), ${config.batchThreads} for batches`;
  const t = plural(config.threads);
  return config.batchThreads === config.threads ? t : `${t}, ${config.batchThreads} for batches`;
}
