import { PullError } from "./errors.js";

/** A Hugging Face repo and which of its files: a quant (GGUF), one file, or the default choice. */
export interface HfRef {
  kind: "hf";
  repo: string;
  revision: string;
  quant?: string;
  file?: string;
}

/** An Ollama registry name, `host/namespace/model:tag` with Ollama's defaults filled in. */
export interface OllamaRef {
  kind: "ollama";
  host: string;
  namespace: string;
  model: string;
  tag: string;
}

export type PullRef = HfRef | OllamaRef;

export const OLLAMA_DEFAULT_HOST = "registry.ollama.ai";
const HF_HOSTS = new Set(["hf.co", "huggingface.co"]);
const REPO_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const HOST = /^[A-Za-z0-9][A-Za-z0-9.-]*(:\d+)?$/;

function badRef(text: string, why: string): PullError {
  return new PullError(400, `invalid model reference "${text}": ${why} (expected hf:ORG/REPO[:QUANT|:FILE], hf.co/ORG/REPO[:QUANT], ollama:NAME[:TAG] or an Ollama name such as llama3.2:1b)`);
}

/** `ORG/REPO[:QUANT|:FILE.gguf]`; Ollama's `:latest` on an hf.co name means the default quant. */
function parseHf(text: string, rest: string): HfRef {
  const colon = rest.indexOf(":");
  const repo = colon < 0 ? rest : rest.slice(0, colon);
  const selector = colon < 0 ? "" : rest.slice(colon + 1);
  const parts = repo.split("/");
  if (parts.length !== 2 || !parts.every((p) => REPO_PART.test(p))) throw badRef(text, "a Hugging Face repo is ORG/REPO");
  if (colon >= 0 && selector === "") throw badRef(text, "nothing after the colon");
  const ref: HfRef = { kind: "hf", repo, revision: "main" };
  if (/\.gguf$/i.test(selector)) ref.file = selector;
  else if (selector !== "" && selector.toLowerCase() !== "latest") ref.quant = selector;
  return ref;
}

/** Ollama's name grammar: `[host/][namespace/]model[:tag]`, defaults registry.ollama.ai, library, latest. */
export function parseOllamaName(name: string): OllamaRef {
  return parseOllama(name, name);
}

function parseOllama(text: string, name: string): OllamaRef {
  const slash = name.lastIndexOf("/");
  const colon = name.lastIndexOf(":");
  const hasTag = colon > slash;
  const path = hasTag ? name.slice(0, colon) : name;
  const tag = hasTag ? name.slice(colon + 1) : "latest";
  const parts = path.split("/");
  if (parts.length > 3) throw badRef(text, "too many slashes");
  const model = parts.at(-1)!;
  const namespace = parts.length >= 2 ? parts.at(-2)! : "library";
  const host = parts.length === 3 ? parts[0]! : OLLAMA_DEFAULT_HOST;
  if (!REPO_PART.test(model) || !REPO_PART.test(namespace)) throw badRef(text, "names are letters, digits, '.', '_' and '-'");
  if (!TAG.test(tag)) throw badRef(text, `"${tag}" is not a valid tag`);
  if (!HOST.test(host)) throw badRef(text, `"${host}" is not a valid registry host`);
  return { kind: "ollama", host: host.toLowerCase(), namespace, model, tag };
}

/**
 * Parses what `shimmy pull` and /api/pull accept: `hf:ORG/REPO[:QUANT|:FILE]`, `hf.co/…` or
 * `huggingface.co/…` (as Ollama writes Hub models), `ollama:NAME[:TAG]`, or a bare Ollama name.
 */
export function parsePullRef(input: string): PullRef {
  const text = input.trim();
  if (text === "") throw badRef(input, "it is empty");
  if (/^hf:/i.test(text)) return parseHf(text, text.slice(3));
  const name = /^ollama:/i.test(text) ? text.slice("ollama:".length) : text.replace(/^https?:\/\//i, "");
  const host = name.split("/")[0]!.toLowerCase();
  if (HF_HOSTS.has(host) && name.split("/").length === 3) return parseHf(text, name.slice(host.length + 1));
  return parseOllama(text, name);
}

/** The reference as a user would type it again. */
export function formatPullRef(ref: PullRef): string {
  if (ref.kind === "hf") return `hf:${ref.repo}${ref.file ? `:${ref.file}` : ref.quant ? `:${ref.quant}` : ""}`;
  return `${ref.host}/${ref.namespace}/${ref.model}:${ref.tag}`;
}
