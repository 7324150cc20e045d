import type { Socket } from "node:net";
import type { FastifyReply } from "fastify";

/**
 * Server-sent events on the raw response: `data: <json>\n\n` … `data: [DONE]\n\n`.
 *
 * Events go straight to the socket, framed as HTTP/1.1 chunks here, instead of through
 * `res.write`: Node's response layer corks the socket and flushes on the next tick with a
 * three-buffer writev per event, and that bookkeeping was the largest piece of the main thread's
 * work per streamed token (perf, 2-core VM). The response object still owns the headers and
 * the closing zero-length chunk, so keep-alive works as before.
 */
export class SseWriter {
  private readonly socket: Socket | null;
  private readonly chunked: boolean;

  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
    // HTTP/1.0 clients get an unframed body that ends when the connection closes.
    this.chunked = res.chunkedEncoding;
    this.socket = res.socket;
  }

  get closed(): boolean {
    return this.reply.raw.destroyed || this.reply.raw.writableEnded;
  }

  send(data: unknown): void {
    this.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  private write(event: string): void {
    if (this.closed) return;
    if (!this.socket) {
      this.reply.raw.write(event);
      return;
    }
    this.socket.write(this.chunked ? `${Buffer.byteLength(event).toString(16)}\r\n${event}\r\n` : event);
  }

  end(): void {
    if (this.closed) return;
    if (!this.socket) return void this.reply.raw.end("data: [DONE]\n\n");
    this.write("data: [DONE]\n\n");
    this.reply.raw.end();
  }
}
