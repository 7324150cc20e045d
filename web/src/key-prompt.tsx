import { useState } from "preact/hooks";
import { storeApiKey } from "./api.js";

/** Shown after a 401: the key is kept in this browser's localStorage and sent with every request. */
export function KeyPrompt({ onSaved }: { onSaved: () => void }) {
  const [key, setKey] = useState("");
  return (
    <div class="backdrop" role="dialog" aria-modal="true" aria-labelledby="key-title">
      <form
        class="key-prompt"
        onSubmit={(e) => {
          e.preventDefault();
          if (key.trim() === "") return;
          storeApiKey(key.trim());
          onSaved();
        }}
      >
        <h2 id="key-title">API key</h2>
        <p>This server needs an API key. It is kept in this browser only.</p>
        <input type="password" aria-label="API key" autoComplete="off" autoFocus value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        <button type="submit" disabled={key.trim() === ""}>
          Use key
        </button>
      </form>
    </div>
  );
}
