import type { FastifyInstance } from "fastify";
import { type ServerMetrics, UNMATCHED_ROUTE } from "../metrics.js";

/**
 * `GET /metrics` (Prometheus text format; docs/metrics.md) and the hook that counts every
 * response by its route pattern, so label values stay as few as the routes.
 */
export function registerMetrics(app: FastifyInstance, metrics: ServerMetrics): void {
  app.addHook("onResponse", async (request, reply) => {
    metrics.onResponse(request.routeOptions.url ?? UNMATCHED_ROUTE, request.method, reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get("/metrics", async (_request, reply) => {
    const { contentType, text } = await metrics.render();
    return reply.type(contentType).send(text);
  });
}
