import type { FastifyInstance } from "fastify";
import type { EmbeddingInput } from "../../engine/embedding-input.js";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { runEmbeddings } from "../embeddings.js";
import { logIgnoredOnce } from "../ignored-fields.js";

interface EmbeddingBody {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: "float" | "base64" | null;
  dimensions?: number | null;
  user?: string | null;
}

const tokenIds = { type: "array", items: { type: "integer", minimum: 0 } } as const;

const embeddingBody = {
  type: "object",
  required: ["model", "input"],
  properties: {
    model: { type: "string", minLength: 1 },
    input: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }, tokenIds, { type: "array", items: tokenIds }] },
    encoding_format: { enum: ["float", "base64", null] },
    dimensions: { type: ["integer", "null"], minimum: 1 },
    user: { type: ["string", "null"] },
  },
  additionalProperties: false,
} as const;

/** `input` in its four shapes → one engine input per vector asked for. */
function inputsFrom(input: EmbeddingBody["input"]): EmbeddingInput[] {
  if (typeof input === "string") return [{ kind: "text", text: input }];
  // An empty array is caught by the engine's check (nothing to embed).
  if (input.length === 0) return [];
  if (typeof input[0] === "number") return [{ kind: "tokens", tokens: input as number[] }];
  return (input as (string | number[])[]).map((item) => (typeof item === "string" ? { kind: "text", text: item } : { kind: "tokens", tokens: item }));
}

/** A vector as OpenAI's base64 encoding: little-endian float32 bytes. */
function base64Vector(vector: number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => bytes.writeFloatLE(x, i * 4));
  return bytes.toString("base64");
}

/** POST /v1/embeddings: L2-normalised pooled vectors (as llama-server answers this route). */
export function registerEmbeddings(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: EmbeddingBody }>("/v1/embeddings", { schema: { body: embeddingBody } }, async (request, reply) => {
    const body = request.body;
    logIgnoredOnce(request.log, "openai", body, ["user"]);
    const result = await runEmbeddings(ctx, {
      model: body.model,
      inputs: inputsFrom(body.input),
      param: "input",
      truncate: false,
      dimensions: body.dimensions ?? undefined,
      normalize: true,
      signal: abortOnDisconnect(reply).signal,
    });
    const base64 = body.encoding_format === "base64";
    return {
      object: "list",
      data: result.vectors.map((v, index) => ({ object: "embedding", index, embedding: base64 ? base64Vector(v) : v })),
      model: result.model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    };
  });
}
