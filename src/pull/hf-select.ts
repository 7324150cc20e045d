import { SPLIT_RE } from "../discovery/naming.js";
import { PullError } from "./errors.js";
import type { HfRef } from "./refs.js";

/** GGUFs in a repo that are not the model itself (projectors, importance matrices, draft heads). */
const NOT_A_MODEL = /mmproj|imatrix|mtp-|eagle3-|dflash-|dspark-/i;

/** llama-server's -hf default: Q4_K_M, then Q8_0, then the first model GGUF. */
const DEFAULT_QUANTS = ["Q4_K_M", "Q8_0"];

/** Files a SafeTensors checkpoint needs beside its weights, for our converter. */
const HF_SUPPORT_FILES = new Set([
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "tokenizer.model",
  "special_tokens_map.json",
  "added_tokens.json",
  "vocab.json",
  "merges.txt",
  "chat_template.jinja",
  "chat_template.json",
  "model.safetensors.index.json",
]);

const baseName = (file: string): string => file.slice(file.lastIndexOf("/") + 1);
const isModelGguf = (file: string): boolean => /\.gguf$/i.test(file) && !NOT_A_MODEL.test(baseName(file));
const isFirstPart = (file: string): boolean => {
  const split = SPLIT_RE.exec(baseName(file));
  return !split || Number(split[2]) === 1;
};

/** The quant a GGUF's name carries: the last `-` or `.` separated word of its stem ("…-Q4_K_M.gguf"). */
export function quantOf(file: string): string {
  const name = baseName(file);
  const split = SPLIT_RE.exec(name);
  const stem = split ? split[1]! : name.replace(/\.gguf$/i, "");
  return stem.split(/[-.]/).at(-1)!;
}

/** All parts of a split GGUF (the first part given), in order; an incomplete set is an error. */
function withSplitParts(first: string, files: string[]): string[] {
  const split = SPLIT_RE.exec(baseName(first));
  if (!split) return [first];
  const dir = first.slice(0, first.length - baseName(first).length);
  const count = Number(split[3]);
  const parts = Array.from({ length: count }, (_, i) => `${dir}${split[1]}-${String(i + 1).padStart(5, "0")}-of-${split[3]}.gguf`);
  const missing = parts.filter((p) => !files.includes(p));
  if (missing.length > 0) throw new PullError(502, `${first} is split in ${count} parts but the repo lacks ${missing.join(", ")}`);
  return parts;
}

function findQuant(ggufs: string[], quant: string): string | undefined {
  const escaped = quant.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const pattern = new RegExp(`${escaped}[.-]`, "i");
  return ggufs.find((f) => isFirstPart(f) && pattern.test(baseName(f)));
}

/**
 * The files to download for a reference, given the repo's file list: the GGUF for the quant
 * (all parts of a split one), the named file, or — for a repo without GGUFs — a whole
 * SafeTensors checkpoint (weights, index, config, tokenizer files).
 */
export function selectHfFiles(ref: HfRef, files: string[]): { files: string[]; format: "gguf" | "safetensors" } {
  if (ref.file) {
    const wanted = ref.file.toLowerCase();
    const match = files.find((f) => f === ref.file) ?? files.find((f) => f.toLowerCase() === wanted || baseName(f).toLowerCase() === wanted);
    if (!match) throw new PullError(404, `${ref.repo} has no file ${ref.file}; its GGUF files: ${files.filter((f) => /\.gguf$/i.test(f)).join(", ") || "none"}`);
    const first = SPLIT_RE.exec(baseName(match)) ? match.replace(/-\d{5}-of-(\d{5})\.gguf$/i, "-00001-of-$1.gguf") : match;
    return { files: withSplitParts(first, files), format: "gguf" };
  }
  const ggufs = files.filter(isModelGguf);
  if (ggufs.length > 0) {
    const chosen = ref.quant ? findQuant(ggufs, ref.quant) : DEFAULT_QUANTS.map((q) => findQuant(ggufs, q)).find(Boolean) ?? ggufs.find(isFirstPart);
    if (!chosen) {
      const quants = [...new Set(ggufs.filter(isFirstPart).map(quantOf))];
      throw new PullError(404, `${ref.repo} has no GGUF for quant ${ref.quant}; available: ${quants.join(", ")}`);
    }
    return { files: withSplitParts(chosen, files), format: "gguf" };
  }
  const weights = files.filter((f) => !f.includes("/") && f.endsWith(".safetensors"));
  if (weights.length > 0 && files.includes("config.json")) {
    if (ref.quant) throw new PullError(400, `${ref.repo} has no GGUF files, only a SafeTensors checkpoint: pull it without a quant (hf:${ref.repo}) and Shimmy converts it on first use`);
    return { files: files.filter((f) => !f.includes("/") && (f.endsWith(".safetensors") || HF_SUPPORT_FILES.has(f))), format: "safetensors" };
  }
  throw new PullError(404, `${ref.repo} has neither GGUF files nor a SafeTensors checkpoint (config.json + *.safetensors)`);
}
