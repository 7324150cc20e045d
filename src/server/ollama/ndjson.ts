import type { FastifyReply } from "fastify";
import { StreamWriter } from "../stream-writer.js";

/** Ollama's stream: one JSON object per line (`application/x-ndjson`). */
export class NdjsonWriter {
  private readonly stream: StreamWriter;

  constructor(reply: FastifyReply) {
    this.stream = new StreamWriter(reply, "application/x-ndjson");
  }

  send(data: unknown): void {
    this.stream.write(`${JSON.stringify(data)}\n`);
  }

  end(): void {
    this.stream.end();
  }
}
