import type { FastifyInstance } from "fastify";
import { servableModels } from "../../engine/servability.js";
import type { ServerContext } from "../context.js";
import { invalidParam } from "../errors.js";

/**
 * llama-server's `POST /tokenize`, `POST /detokenize` and `GET /props` (its README's shapes),
 * with a `model` field because Shimmy serves many models. The model is loaded as for a
 * generation (the tokenizer lives in it). Documented in docs/api.md.
 */

const model = { type: "string", minLength: 1 } as const;

const tokenizeBody = {
  type: "object",
  required: ["content"],
  properties: { model, content: { type: "string" }, add_special: { type: "boolean" }, parse_special: { type: "boolean" }, with_pieces: { type: "boolean" } },
  additionalProperties: false,
} as const;

const detokenizeBody = {
  type: "object",
  properties: { model, tokens: { type: "array", items: { type: "integer" } } },
  additionalProperties: false,
} as const;

const propsQuery = { type: "object", properties: { model }, additionalProperties: false } as const;

interface TokenizeBody {
  model?: string;
  content: string;
  add_special?: boolean;
  parse_special?: boolean;
  with_pieces?: boolean;
}

interface DetokenizeBody {
  model?: string;
  tokens?: number[];
}

/** The model a request names; with one servable model it may be left out. */
function modelName(ctx: ServerContext, requested: string | undefined): string {
  if (requested !== undefined) return requested;
  const servable = servableModels(ctx.registry.all());
  if (servable.length === 1) return servable[0]!.name;
  throw invalidParam("model", `Missing required parameter: 'model' (this server serves ${servable.length} models; name one of them).`, "missing_required_parameter");
}

/** llama-server's piece: the token's text where it is whole UTF-8, else its bytes. */
const piece = (p: { text: string; bytes: number[] }): string | number[] => (p.text.includes("\uFFFD") ? p.bytes : p.text);

export function registerTokenize(app: FastifyInstance, ctx: ServerContext): void {
  app.post<{ Body: TokenizeBody }>("/tokenize", { schema: { body: tokenizeBody } }, async (request) => {
    const body = request.body;
    return ctx.pool.use(modelName(ctx, body.model), async (loaded) => {
      // llama-server's defaults: no BOS/EOS added, special-token text parsed.
      const tokens = await loaded.tokenize(body.content, { addSpecial: body.add_special ?? false, parseSpecial: body.parse_special ?? true });
      return { tokens: body.with_pieces === true ? tokens.map((id) => ({ id, piece: piece(loaded.tokenPiece(id)) })) : tokens };
    });
  });

  app.post<{ Body: DetokenizeBody }>("/detokenize", { schema: { body: detokenizeBody } }, async (request) => {
    const body = request.body;
    return ctx.pool.use(modelName(ctx, body.model), async (loaded) => ({ content: loaded.detokenize(body.tokens ?? []) }));
  });

  app.get<{ Querystring: { model?: string } }>("/props", { schema: { querystring: propsQuery } }, async (request) => {
    return ctx.pool.use(modelName(ctx, request.query.model), async (loaded) => ({
      model: loaded.spec.name,
      model_path: loaded.spec.files[0] ?? null,
      lora: loaded.spec.lora ?? null,
      total_slots: loaded.slots.slots.length,
      // What llama-server's clients read from here: the context each slot (request) gets.
      default_generation_settings: { n_ctx: loaded.contextSize },
      n_ctx_train: loaded.model.trainContextSize,
      vocab_size: loaded.vocabSize,
      chat_template: loaded.template.kind === "model" ? loaded.template.source : null,
      bos_token: loaded.model.tokens.bosString,
      eos_token: loaded.model.tokens.eosString,
      modalities: { vision: false, audio: false },
      build_info: `shimmy ${ctx.version}`,
    }));
  });
}
