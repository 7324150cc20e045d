import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunningServer } from "../src/server/server.js";
import { f32, f32Tensor, str } from "./helpers/gguf-fixtures.js";
import { writeGguf } from "../src/formats/gguf-writer.js";
import { STORIES_GGUF, tempDir } from "./helpers/paths.js";
import { type Family, parsePrometheusText, sampleValue } from "./helpers/prometheus-text.js";
import { golden, postJson, startTestServer, until } from "./helpers/server.js";

const CHAT_MODEL = "stories260k-chat";
const TEXT_MODEL = "stories260k";

async function scrape(url: string, headers: Record<string, string> = {}): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
  return parsePrometheusText(await res.text());
}

/** A sample's value, 0 when the series does not exist yet (a counter before its first increment). */
const valueOr0 = (m: Map<string, Family>, name: string, labels: Record<string, string> = {}): number => sampleValue(m, name, labels) ?? 0;

describe("GET /metrics", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  it("moves counters and histograms by exactly the traffic sent", async () => {
    const before = await scrape(server.url);
    const responses: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details: { cached_tokens: number } }[] = [];
    for (const content of ["Tell me a story", "Once upon a time", "Tell me a story"]) {
      const r = await postJson(`${server.url}/v1/chat/completions`, { model: CHAT_MODEL, messages: [{ role: "user", content }], max_tokens: 5, temperature: 0 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      responses.push(r.json.usage);
    }
    const unknownModel = await postJson(`${server.url}/v1/chat/completions`, { model: "no-such-model", messages: [{ role: "user", content: "hi" }] });
    assert.equal(unknownModel.status, 404);
    const rawPath = `/no/such/route-${Date.now()}`;
    assert.equal((await fetch(`${server.url}${rawPath}`)).status, 404);

    const chatRoute = { route: "/v1/chat/completions", method: "POST" };
    const metricsRoute = { route: "/metrics", method: "GET", status: "200" };
    const expectedRequests: [Record<string, string>, number][] = [
      [{ ...chatRoute, status: "200" }, 3],
      [{ ...chatRoute, status: "404" }, 1],
      [{ route: "unmatched", method: "GET", status: "404" }, 1],
    ];
    // Responses are counted once they have been sent, which the server may see just after the
    // client: scrape until they all show. Each scrape counts too, from the next one on.
    let scrapesSinceBefore = 0;
    let now = before;
    await until(async () => {
      now = await scrape(server.url);
      scrapesSinceBefore++;
      return [...expectedRequests, [metricsRoute, scrapesSinceBefore] as const].every(([labels, n]) => valueOr0(now, "shimmy_http_requests_total", labels) - valueOr0(before, "shimmy_http_requests_total", labels) >= n);
    }, "request counters");
    expectedRequests.push([metricsRoute, scrapesSinceBefore]);
    const delta = (name: string, labels: Record<string, string> = {}) => valueOr0(now, name, labels) - valueOr0(before, name, labels);

    for (const [labels, n] of expectedRequests) assert.equal(delta("shimmy_http_requests_total", labels), n, JSON.stringify(labels));
    assert.equal(delta("shimmy_http_request_duration_seconds_count", chatRoute), 4);
    // Route patterns only: the raw URL of the 404 is no label value.
    const requests = now.get("shimmy_http_requests_total")!;
    assert.equal(requests.type, "counter");
    assert.ok(requests.samples.every((s) => s.labels.route !== rawPath), "raw URLs are not labels");

    const model = { model: CHAT_MODEL };
    const sum = (pick: (u: (typeof responses)[number]) => number) => responses.reduce((n, u) => n + pick(u), 0);
    assert.ok(sum((u) => u.completion_tokens) > 0);
    assert.equal(delta("shimmy_generated_tokens_total", model), sum((u) => u.completion_tokens));
    assert.equal(delta("shimmy_prompt_tokens_total", model), sum((u) => u.prompt_tokens));
    assert.equal(delta("shimmy_prompt_cached_tokens_total", model), sum((u) => u.prompt_tokens_details.cached_tokens));
    // The third prompt repeats the first: its slot's cached prefix is reused.
    assert.ok(responses[2]!.prompt_tokens_details.cached_tokens > 0, "prefix reuse happened");
    assert.equal(delta("shimmy_generations_total", { ...model, finish_reason: "length" }) + delta("shimmy_generations_total", { ...model, finish_reason: "stop" }), 3);
    assert.equal(delta("shimmy_time_to_first_token_seconds_count", model), responses.filter((u) => u.completion_tokens >= 1).length);
    assert.equal(delta("shimmy_time_per_output_token_seconds_count", model), responses.filter((u) => u.completion_tokens >= 2).length);
    assert.equal(delta("shimmy_time_to_first_token_seconds_count", model), 3);
    assert.ok(delta("shimmy_time_to_first_token_seconds_sum", model) > 0);
    assert.equal(now.get("shimmy_time_to_first_token_seconds")!.type, "histogram");

    // Gauges: one model loaded, nothing running or waiting now.
    assert.equal(sampleValue(now, "shimmy_models_loaded"), 1);
    assert.equal(sampleValue(now, "shimmy_requests_running", model), 0);
    assert.equal(sampleValue(now, "shimmy_requests_waiting", model), 0);
    assert.equal(sampleValue(now, "shimmy_model_slots", model), 2);
    assert.ok(sampleValue(now, "shimmy_model_memory_bytes", model)! > 0);
    assert.ok(sampleValue(now, "shimmy_model_load_seconds", model)! > 0);
    for (const name of ["vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"]) {
      assert.equal(now.get(name)?.type, "gauge", name);
      assert.equal(sampleValue(now, name), 0, name);
    }
    const lora = now.get("vllm:lora_requests_info")!;
    assert.equal(lora.samples.length, 1);
    assert.deepEqual(lora.samples[0]!.labels, { running_lora_adapters: "", waiting_lora_adapters: "", max_lora: String(server.ctx.config.maxLoadedModels) });
    assert.ok(Math.abs(lora.samples[0]!.value - Date.now() / 1000) < 60, "the value is the time it was read");
    // Process metrics, prefixed, on the server's own registry.
    assert.equal(now.get("shimmy_process_cpu_seconds_total")?.type, "counter");
    assert.ok(sampleValue(now, "shimmy_nodejs_heap_size_total_bytes")! > 0);
  });

  it("shows a running generation in the gauges while it streams", async () => {
    const controller = new AbortController();
    // A long generation on the text model; the first chunk means its slot is busy.
    const res = await fetch(`${server.url}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: TEXT_MODEL, prompt: "Once upon a time", max_tokens: 480, temperature: 0, stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    const during = await scrape(server.url);
    controller.abort();
    await reader.cancel().catch(() => undefined);
    assert.equal(sampleValue(during, "shimmy_requests_running", { model: TEXT_MODEL }), 1);
    assert.equal(sampleValue(during, "vllm:num_requests_running"), 1);
    assert.equal(sampleValue(during, "shimmy_models_loaded"), 2);
    for (const [name, labels] of [["vllm:kv_cache_usage_perc", {}], ["shimmy_kv_cache_usage_ratio", { model: TEXT_MODEL }]] as const) {
      const usage = sampleValue(during, name, labels)!;
      assert.ok(usage > 0 && usage <= 1, `${name} ${usage}`);
    }
    // The whole-server ratio spreads the busy cells over both models' cells.
    assert.ok(sampleValue(during, "vllm:kv_cache_usage_perc")! < sampleValue(during, "shimmy_kv_cache_usage_ratio", { model: TEXT_MODEL })!);
    await until(async () => sampleValue(await scrape(server.url), "vllm:num_requests_running") === 0, "the aborted generation to leave its slot");
  });

  it("keeps each server's metrics apart", async () => {
    const other = await startTestServer();
    try {
      const fresh = await scrape(other.url);
      assert.equal(sampleValue(fresh, "shimmy_http_requests_total", { route: "/v1/chat/completions", method: "POST", status: "200" }), undefined);
      assert.equal(sampleValue(fresh, "shimmy_models_loaded"), 0);
    } finally {
      await other.close();
    }
  });
});

describe("GET /metrics with an API key", () => {
  let server: RunningServer;
  before(async () => {
    server = await startTestServer({ apiKeys: ["sk-scraper"] });
  });
  after(() => server.close());

  it("needs the bearer token like every route", async () => {
    assert.equal((await fetch(`${server.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: "Bearer wrong" } })).status, 401);
    const metrics = await scrape(server.url, { authorization: "Bearer sk-scraper" });
    // The refused scrapes were counted by route and status.
    assert.equal(sampleValue(metrics, "shimmy_http_requests_total", { route: "/metrics", method: "GET", status: "401" }), 2);
  });
});

describe("LoRA models in vllm:lora_requests_info", () => {
  let server: RunningServer;
  const tmp = tempDir("shimmy-metrics-lora-");
  before(async () => {
    // A real adapter for stories260K's first attention query (dim 64, rank 4); lora_b = 0 leaves the output unchanged.
    const adapter = join(tmp.path, "stories-lora.gguf");
    const meta = new Map([["general.architecture", str("llama")], ["general.type", str("adapter")], ["adapter.type", str("lora")], ["adapter.lora.alpha", f32(4)]]);
    await writeGguf(adapter, meta, [f32Tensor("blk.0.attn_q.weight.lora_a", [64, 4]), f32Tensor("blk.0.attn_q.weight.lora_b", [4, 64], 0)]);
    server = await startTestServer({ modelPaths: [] }, (c) => {
      c.baseGguf = STORIES_GGUF;
      c.loraGguf = adapter;
    });
  });
  after(async () => {
    await server.close();
    tmp.cleanup();
  });

  it("lists a loaded adapter model as running", async () => {
    const models = ((await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string; meta: { lora: string | null } }[] }).data;
    const adapterModel = models.find((m) => m.meta.lora !== null);
    assert.ok(adapterModel, JSON.stringify(models));
    const r = await postJson(`${server.url}/v1/completions`, { model: adapterModel.id, prompt: golden.greedy[0]!.prompt, max_tokens: 3, temperature: 0 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const info = (await scrape(server.url)).get("vllm:lora_requests_info")!;
    assert.equal(info.samples.length, 1);
    assert.equal(info.samples[0]!.labels.running_lora_adapters, adapterModel.id);
    assert.equal(info.samples[0]!.labels.waiting_lora_adapters, "");
  });
});
