import { useMemo } from "preact/hooks";
import type { AnswerStats } from "./chat-stream.js";
import { renderMarkdown } from "./markdown.js";
import type { StoredMessage } from "./store.js";

const count = new Intl.NumberFormat("en");
const rate = new Intl.NumberFormat("en", { maximumFractionDigits: 1 });

/** Only what the server measured: token counts from `usage`, speeds from Shimmy's `timings`. */
function statsText(s: AnswerStats): string {
  const parts = [`${count.format(s.promptTokens)} prompt tokens${s.cachedTokens ? ` (${count.format(s.cachedTokens)} cached)` : ""}`, `${count.format(s.completionTokens)} tokens`];
  if (s.predictedPerSecond !== null) parts.push(`${rate.format(s.predictedPerSecond)} tokens/s`);
  if (s.promptPerSecond !== null) parts.push(`prompt ${rate.format(s.promptPerSecond)} tokens/s`);
  return parts.join(" · ");
}

function AnswerFooter({ message, streaming }: { message: StoredMessage; streaming: boolean }) {
  if (streaming) return <footer class="meta">writing…</footer>;
  if (message.error !== undefined)
    return (
      <footer class="meta error">
        <span role="alert">{message.error}</span>
      </footer>
    );
  if (message.stopped) return <footer class="meta">stopped</footer>;
  if (message.stats) return <footer class="meta stats">{statsText(message.stats)}</footer>;
  return null;
}

export function MessageView({ message, streaming }: { message: StoredMessage; streaming: boolean }) {
  const html = useMemo(() => renderMarkdown(message.content), [message.content]);
  const user = message.role === "user";
  return (
    <article class={`message ${message.role}`} aria-label={user ? "You" : "Answer"}>
      <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />
      {!user && <AnswerFooter message={message} streaming={streaming} />}
    </article>
  );
}
