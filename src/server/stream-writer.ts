import type { Socket } from "node:net";
import type { FastifyReply } from "fastify";

/**
 * A streamed response body written straight to the socket, framed as HTTP/1.1 chunks here,
 * instead of through `res.write`: Node's response layer corks the socket and flushes on the next
 * tick with a three-buffer writev per write, and that bookkeeping was the largest piece of the
 * main thread's work per streamed token (perf, 2-core VM). The response object still owns the
 * headers and the closing zero-length chunk, so keep-alive works as before. Used by the SSE
 * (OpenAI) and NDJSON (Ollama) streams.
 */
export class StreamWriter {
  private readonly socket: Socket | null;
  private readonly chunked: boolean;

  constructor(private readonly reply: FastifyReply, contentType: string) {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      "content-type": contentType,
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

  write(text: string): void {
    if (this.closed) return;
    if (!this.socket) {
      this.reply.raw.write(text);
      return;
    }
    this.socket.write(this.chunked ? `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n` : text);
  }

  /** Writes `last` (if any) and ends the response. */
  end(last?: string): void {
    if (this.closed) return;
    if (!this.socket) return void this.reply.raw.end(last);
    if (last) this.write(last);
    this.reply.raw.end();
  }
}
