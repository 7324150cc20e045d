import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ModelPool } from "../engine/model-pool.js";
import type { PromptCacheStats } from "../engine/prompt-cache/store.js";
import type { DoneEvent } from "../engine/types.js";
import type { ServerContext } from "./context.js";

/**
 * The server's Prometheus metrics (docs/metrics.md), on a registry of its own so that several
 * servers in one process never share counters. Counters and histograms move when a generation
 * or an HTTP response ends; gauges are read from the model pool at scrape time.
 */

/** Seconds to the first token: a queued request or a long prompt reaches tens of seconds. */
const FIRST_TOKEN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 20, 40, 80, 160];
/** Seconds per output token: well under a millisecond for tiny models, a second for large ones on CPU. */
const PER_TOKEN_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2.5];
const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

/** The route label of a request that matched no route (a 404): one value, however many URLs. */
export const UNMATCHED_ROUTE = "unmatched";

type MetricsSource = Pick<ServerContext, "registry" | "config"> & { pool: Pick<ModelPool, "info" | "slotInfo" | "waitingForLoad" | "promptCacheStats"> };

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<"route" | "method" | "status">;
  private readonly httpDuration: Histogram<"route" | "method">;
  private readonly promptTokens: Counter<"model">;
  private readonly cachedTokens: Counter<"model">;
  private readonly generatedTokens: Counter<"model">;
  private readonly generations: Counter<"model" | "finish_reason">;
  private readonly firstToken: Histogram<"model">;
  private readonly perToken: Histogram<"model">;
  private readonly draftTokens: Counter<"model">;
  private readonly draftAccepted: Counter<"model">;

  constructor(private readonly source: MetricsSource) {
    const registers = [this.registry];
    this.httpRequests = new Counter({ name: "shimmy_http_requests_total", help: "HTTP responses sent, by route pattern, method and status code.", labelNames: ["route", "method", "status"], registers });
    this.httpDuration = new Histogram({ name: "shimmy_http_request_duration_seconds", help: "Time from receiving a request to the end of its response (a stream's whole length).", labelNames: ["route", "method"], buckets: REQUEST_BUCKETS, registers });
    this.promptTokens = new Counter({ name: "shimmy_prompt_tokens_total", help: "Prompt tokens of finished generations (the rendered prompt, BOS included; once per request, as usage reports).", labelNames: ["model"], registers });
    this.cachedTokens = new Counter({ name: "shimmy_prompt_cached_tokens_total", help: "Prompt tokens whose KV state was reused from a slot's cache instead of evaluated.", labelNames: ["model"], registers });
    this.generatedTokens = new Counter({ name: "shimmy_generated_tokens_total", help: "Tokens sampled by finished generations (summed over n choices; an end-of-generation token not counted).", labelNames: ["model"], registers });
    this.generations = new Counter({ name: "shimmy_generations_total", help: "Finished generations (one per choice), by how they ended.", labelNames: ["model", "finish_reason"], registers });
    this.firstToken = new Histogram({ name: "shimmy_time_to_first_token_seconds", help: "Waiting for a slot plus evaluating the prompt, up to the first sampled token (model loading not included).", labelNames: ["model"], buckets: FIRST_TOKEN_BUCKETS, registers });
    this.perToken = new Histogram({ name: "shimmy_time_per_output_token_seconds", help: "Mean time per output token after the first: decode time / (generated tokens - 1).", labelNames: ["model"], buckets: PER_TOKEN_BUCKETS, registers });
    this.draftTokens = new Counter({ name: "shimmy_speculative_draft_tokens_total", help: "Draft tokens the model checked (speculative decoding), summed over n choices.", labelNames: ["model"], registers });
    this.draftAccepted = new Counter({ name: "shimmy_speculative_accepted_tokens_total", help: "Draft tokens the model sampled too, so emitted without a decode step of their own.", labelNames: ["model"], registers });
    this.registerPoolGauges();
    this.registerPromptCacheMetrics();
    this.registerInferenceExtensionGauges();
    collectDefaultMetrics({ register: this.registry, prefix: "shimmy_" });
  }

  /** Every choice of one request has ended (their real DoneEvents, in choice order). */
  onGeneration(model: string, dones: readonly DoneEvent[]): void {
    const labels = { model };
    // As usage reports n choices: the prompt once, generated tokens summed.
    this.promptTokens.inc(labels, dones[0]?.usage.promptTokens ?? 0);
    this.cachedTokens.inc(labels, dones[0]?.usage.cachedTokens ?? 0);
    for (const { usage, timings, finishReason } of dones) {
      this.generatedTokens.inc(labels, usage.completionTokens);
      this.generations.inc({ model, finish_reason: finishReason });
      if (timings.drafted !== undefined) {
        this.draftTokens.inc(labels, timings.drafted);
        this.draftAccepted.inc(labels, timings.accepted ?? 0);
      }
      // Timings without a sampled token (an abort while queued) measure no first token.
      if (usage.completionTokens >= 1) this.firstToken.observe(labels, (timings.queueMs + timings.promptMs) / 1000);
      if (usage.completionTokens >= 2) this.perToken.observe(labels, timings.generationMs / (usage.completionTokens - 1) / 1000);
    }
  }

  /** An HTTP response has been sent; `route` is the route pattern (never the raw URL), or UNMATCHED_ROUTE. */
  onResponse(route: string, method: string, status: number, seconds: number): void {
    this.httpRequests.inc({ route, method, status: String(status) });
    this.httpDuration.observe({ route, method }, seconds);
  }

  /** The exposition text (Prometheus text format 0.0.4) and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }

  /** Gauges read from the pool at scrape time; one series per loaded model, gone once it unloads. */
  private registerPoolGauges(): void {
    const registers = [this.registry];
    const { pool } = this.source;
    const perModel = (name: string, help: string, value: (m: ReturnType<typeof pool.info>[number]) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ["model"],
        registers,
        collect() {
          this.reset();
          for (const m of pool.info()) this.set({ model: m.name }, value(m));
        },
      });
    };
    perModel("shimmy_requests_running", "Busy slots: sequences generating or evaluating their prompt (a request with n choices holds n).", (m) => m.busySlots);
    perModel("shimmy_model_memory_bytes", "Bytes a loaded model holds: weights plus its context (KV cache and compute buffers).", (m) => m.memoryBytes);
    perModel("shimmy_model_load_seconds", "How long the loaded instance of the model took to load (a SafeTensors conversion not included).", (m) => m.loadMs / 1000);
    perModel("shimmy_model_slots", "Parallel slots (sequences) of a loaded model.", (m) => m.slots);
    new Gauge({
      name: "shimmy_requests_waiting",
      help: "Requests waiting: for a free slot of a loaded model, or for their model to load.",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const [model, n] of waitingByModel(pool)) this.set({ model }, n);
      },
    });
    new Gauge({
      name: "shimmy_kv_cache_usage_ratio",
      help: "KV cells held by busy slots / all KV cells of the model's slots (0-1; idle slots' cached prefixes count as free).",
      labelNames: ["model"],
      registers,
      collect() {
        this.reset();
        for (const m of pool.slotInfo()) this.set({ model: m.name }, kvCacheUsage([m]));
      },
    });
    new Gauge({
      name: "shimmy_models_loaded",
      help: "Models loaded now.",
      registers,
      collect() {
        this.set(pool.info().length);
      },
    });
  }

  /** The prompt cache's counters (docs/configuration.md "Prompt cache"), read from its store at scrape time; absent when it is off. */
  private registerPromptCacheMetrics(): void {
    const { pool } = this.source;
    if (pool.promptCacheStats() === undefined) return;
    const registers = [this.registry];
    const counters: [string, string, keyof PromptCacheStats][] = [
      ["shimmy_prompt_cache_hits_total", "Requests whose slot got a saved prompt prefix's KV state from disk (after an unload, a restart, or a prefix displaced from its slot).", "hits"],
      ["shimmy_prompt_cache_misses_total", "Requests with a prompt of at least the prompt cache's minimum whose slot held less than that of it and no saved state shared that much.", "misses"],
      ["shimmy_prompt_cache_saves_total", "Prompt prefixes' KV states written to disk.", "saves"],
      ["shimmy_prompt_cache_saved_bytes_total", "Bytes of the prompt prefixes' KV states written to disk.", "savedBytes"],
      ["shimmy_prompt_cache_evictions_total", "Saved states removed to stay within --prompt-cache-size (least recently used first).", "evictions"],
      ["shimmy_prompt_cache_discarded_total", "Saved states found unusable (truncated, corrupt, for changed model files, refused by llama.cpp) and removed.", "discarded"],
    ];
    for (const [name, help, field] of counters) {
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(pool.promptCacheStats()?.[field] ?? 0);
        },
      });
    }
    new Gauge({
      name: "shimmy_prompt_cache_bytes",
      help: "Bytes of saved prompt prefix states on disk now.",
      registers,
      collect() {
        this.set(pool.promptCacheStats()?.diskBytes ?? 0);
      },
    });
  }

  /**
   * The gauges the Gateway API Inference Extension's endpoint picker scrapes, under the vLLM names
   * it recognises, whole-server values as its model-server protocol defines them
   * (docs/proposals/003-model-server-protocol in kubernetes-sigs/gateway-api-inference-extension).
   */
  private registerInferenceExtensionGauges(): void {
    const registers = [this.registry];
    const { pool, registry, config } = this.source;
    new Gauge({
      name: "vllm:num_requests_waiting",
      help: "TotalQueuedRequests: requests waiting for a slot or for their model to load, all models.",
      registers,
      collect() {
        this.set([...waitingByModel(pool).values()].reduce((a, b) => a + b, 0));
      },
    });
    new Gauge({
      name: "vllm:num_requests_running",
      help: "TotalRunningRequests: busy slots, all models.",
      registers,
      collect() {
        this.set(pool.info().reduce((n, m) => n + m.busySlots, 0));
      },
    });
    // vLLM renamed the gauge; the endpoint picker reads kv_cache_usage_perc now, older releases gpu_cache_usage_perc.
    for (const name of ["vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]) {
      new Gauge({
        name,
        help: "KVCacheUtilization (0-1, whatever the device): KV cells held by busy slots / all KV cells, all loaded models.",
        registers,
        collect() {
          this.set(kvCacheUsage(pool.slotInfo()));
        },
      });
    }
    new Gauge({
      name: "vllm:lora_requests_info",
      help: "LoRA adapters (models served with an adapter): running = loaded and ready, waiting = with requests waiting; max_lora = models that may be loaded at once. Value: when it was read (Unix seconds).",
      labelNames: ["running_lora_adapters", "waiting_lora_adapters", "max_lora"],
      registers,
      collect() {
        const isLora = (name: string): boolean => registry.find(name)?.lora !== undefined;
        const running = pool.info().map((m) => m.name).filter(isLora);
        const waiting = [...waitingByModel(pool)].filter(([name, n]) => n > 0 && isLora(name)).map(([name]) => name);
        this.reset();
        // Comma-separated without spaces: the endpoint picker splits on "," alone.
        this.set({ running_lora_adapters: running.join(","), waiting_lora_adapters: waiting.join(","), max_lora: String(config.maxLoadedModels) }, Date.now() / 1000);
      },
    });
  }
}

/** Requests waiting per model: queued for a slot (loaded models) plus waiting for the model's load. */
function waitingByModel(pool: MetricsSource["pool"]): Map<string, number> {
  const waiting = new Map<string, number>();
  for (const m of pool.info()) waiting.set(m.name, m.queued);
  for (const [name, n] of pool.waitingForLoad()) waiting.set(name, (waiting.get(name) ?? 0) + n);
  return waiting;
}

/**
 * KV cells in use / all KV cells, over the given models' slots. Each slot owns `contextSize`
 * cells; "in use" means held by a busy slot (its reused prefix, its prompt and what it generated).
 * An idle slot keeps its tokens for prefix reuse, but the next request may overwrite them, so
 * they count as free, as vLLM counts cached blocks no running request holds. 0 with nothing loaded.
 */
function kvCacheUsage(models: ReturnType<ModelPool["slotInfo"]>): number {
  let used = 0;
  let total = 0;
  for (const m of models) {
    total += m.contextSize * m.slots.length;
    for (const s of m.slots) if (s.busy) used += s.cachedTokens;
  }
  return total === 0 ? 0 : used / total;
}
