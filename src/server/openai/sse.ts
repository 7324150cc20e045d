import type { FastifyReply } from "fastify";

/** Server-sent events on the raw response: `data: <json>\n\n` … `data: [DONE]\n\n`. */
export class SseWriter {
  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
  }

  get closed(): boolean {
    return this.reply.raw.destroyed || this.reply.raw.writableEnded;
  }

  send(data: unknown): void {
    if (!this.closed) this.reply.raw.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  end(): void {
    if (!this.closed) this.reply.raw.end("data: [DONE]\n\n");
  }
}
