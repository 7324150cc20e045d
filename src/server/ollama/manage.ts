import type { FastifyInstance } from "fastify";
import { deleteModel } from "../../pull/delete.js";
import { isAbort } from "../../pull/errors.js";
import type { PullProgress } from "../../pull/progress.js";
import { planPull } from "../../pull/pull.js";
import { findByOllamaName } from "../../registry/ollama-names.js";
import type { ServerContext } from "../context.js";
import { abortOnDisconnect } from "../disconnect.js";
import { ApiError, classifyError } from "../errors.js";
import { NdjsonWriter } from "./ndjson.js";
import { deleteBody, pullBody } from "./schemas.js";

interface PullBody {
  model?: string;
  name?: string;
  stream?: boolean | null;
}

/**
 * `/api/pull` and `/api/delete`: Ollama's model management over Shimmy's stores. A pull refuses
 * with a status while the remote side is asked (listing, manifest); once it streams, a failure is
 * an in-band `{"error"}` line, as in Ollama. Either way the registry is refreshed afterwards.
 */
export function registerOllamaManage(api: FastifyInstance, ctx: ServerContext): void {
  api.post<{ Body: PullBody }>("/pull", { schema: { body: pullBody } }, async (request, reply) => {
    const controller = abortOnDisconnect(reply);
    const plan = await planPull((request.body.model ?? request.body.name)!, { env: ctx.config.env, home: ctx.config.home, signal: controller.signal });
    if (request.body.stream === false) {
      let last: PullProgress = { status: "success" };
      await plan.run((event) => void (last = event));
      ctx.registry.refresh();
      return last;
    }
    const writer = new NdjsonWriter(reply);
    try {
      await plan.run((event) => writer.send(event));
      ctx.registry.refresh();
    } catch (e) {
      if (!isAbort(e, controller.signal)) {
        const { error, internal } = classifyError(e, request.id);
        if (internal) request.log.error({ err: e }, "pull failed");
        writer.send({ error: error.message });
      }
    } finally {
      writer.end();
    }
  });

  api.delete<{ Body: { model?: string; name?: string } }>("/delete", { schema: { body: deleteBody } }, async (request, reply) => {
    const name = (request.body.model ?? request.body.name)!;
    const spec = findByOllamaName(ctx.registry, name);
    if (!spec) throw new ApiError(404, `model '${name}' not found`, "invalid_request_error", "model", "model_not_found");
    // Never forced over HTTP: a file placed by hand stays (403).
    await deleteModel(spec, { requestedName: name });
    await ctx.pool.unload(spec.name, "deleted");
    ctx.registry.refresh();
    return reply.code(200).send();
  });
}
