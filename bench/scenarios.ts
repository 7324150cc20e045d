/** Load scenarios over HTTP, identical for Shimmy and llama-server (OpenAI /v1/completions, streamed). */

export interface StreamResult {
  ttftMs: number;
  totalMs: number;
  completionTokens: number;
  /** Decode rate after the first token. */
  decodeTps: number;
}

/** `untilEnd`: the model may end before `maxTokens` (a trained model at its end of text); otherwise that is an error. */
export async function streamCompletion(url: string, model: string, prompt: string, maxTokens: number, untilEnd = false): Promise<StreamResult> {
  const t0 = performance.now();
  const res = await postWithRetry(`${url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    // The synthetic model never picks EOS or byte tokens under greedy decoding (synthetic-gguf.ts),
    // so every run is exactly max_tokens long and valid UTF-8 (llama-server v0.4.0 aborts a
    // stream whose text is not); completion_tokens is still checked below.
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`${url}: HTTP ${res.status}: ${await res.text()}`);
  let first: number | undefined;
  let completionTokens = 0;
  let pieces = 0;
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of res.body!) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let i: number;
    while ((i = buffer.indexOf("\n\n")) !== -1) {
      const event = buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 2);
      if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
      const data = JSON.parse(event.slice(6)) as { choices?: { text?: string }[]; usage?: { completion_tokens: number } | null; error?: { message?: string } };
      if (data.error) throw new Error(`${url}: error in stream: ${data.error.message ?? JSON.stringify(data.error)}`);
      if (data.choices?.[0]?.text) {
        first ??= performance.now();
        pieces++;
      }
      if (data.usage) completionTokens = data.usage.completion_tokens;
    }
  }
  const end = performance.now();
  completionTokens ||= pieces;
  if (completionTokens !== maxTokens && !(untilEnd && completionTokens > 1)) throw new Error(`${url}: expected ${maxTokens} tokens, got ${completionTokens}`);
  const ttft = (first ?? end) - t0;
  return { ttftMs: ttft, totalMs: end - t0, completionTokens, decodeTps: completionTokens > 1 ? ((completionTokens - 1) / (end - (first ?? end))) * 1000 : 0 };
}

/**
 * fetch reuses pooled keep-alive connections; when a server has just closed one (llama-server's
 * idle timeout), the request fails before it was sent. Those — and only those — are retried.
 */
async function postWithRetry(url: string, init: RequestInit): Promise<Response> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fetch(url, init);
    } catch (e) {
      const code = (e as { cause?: { code?: string } }).cause?.code;
      if (attempt >= 2 || !["ECONNRESET", "UND_ERR_SOCKET", "EPIPE"].includes(code ?? "")) throw e;
    }
  }
}

/** Deterministic text of roughly `words` words: different seeds share no prefix. */
export function promptText(words: number, seed: number): string {
  const letters = "abcdefghijklmnopqrstuvwxyz";
  let s = (seed * 2654435761) >>> 0 || 1;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const n = (s >>> 0) % 676;
    out.push(letters[Math.floor(n / 26)]! + letters[n % 26]!);
  }
  return out.join(" ");
}

export const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

export interface ConcurrencyResult {
  concurrency: number;
  requests: number;
  aggregateTps: number;
  p50Ms: number;
  p95Ms: number;
}

/** `requests` requests, at most `concurrency` at a time; aggregate = all tokens / wall time. */
export async function concurrent(url: string, model: string, concurrency: number, requests: number, maxTokens: number, seedBase: number): Promise<ConcurrencyResult> {
  const latencies: number[] = [];
  let tokens = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const r = await streamCompletion(url, model, promptText(12, seedBase + i), maxTokens);
        latencies.push(r.totalMs);
        tokens += r.completionTokens;
      }
    }),
  );
  const wall = performance.now() - t0;
  return { concurrency, requests, aggregateTps: (tokens / wall) * 1000, p50Ms: percentile(latencies, 50), p95Ms: percentile(latencies, 95) };
}
