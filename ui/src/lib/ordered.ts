// Terminal input must reach the shell in the order it was typed. Each Tauri command runs as
// its own task in the app, so two `exec_input` calls in flight at once may land in either
// order (CI once saw "echo term-$((6*7))" arrive as "echo term(-$(6*7))"). So one send is in
// flight at a time, and what is typed meanwhile is joined and sent next, in one call.

/** Wraps `send` so data goes out in call order, one send at a time, joined while waiting.
 * Each call's promise settles with the send that carried its data. */
export function orderedSender(send: (data: string) => Promise<void>): (data: string) => Promise<void> {
  let pending = "";
  let next: Promise<void> | null = null; // the send that will carry `pending`
  let last: Promise<unknown> = Promise.resolve(); // settles when the latest send has
  return (data: string) => {
    if (!data) return Promise.resolve();
    pending += data;
    if (!next) {
      next = last.then(() => {
        const out = pending;
        pending = "";
        next = null;
        return send(out);
      });
      last = next.catch(() => {});
    }
    return next;
  };
}
