import { describe, expect, it } from "vitest";
import { orderedSender } from "./ordered";

/** A send whose calls finish only when the test says so. */
function manualSend() {
  const calls: Array<{ data: string; done: () => void; fail: (e: Error) => void }> = [];
  const send = (data: string) =>
    new Promise<void>((resolve, reject) => calls.push({ data, done: resolve, fail: reject }));
  return { calls, send };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("orderedSender", () => {
  it("keeps one send in flight and joins what is typed meanwhile, in order", async () => {
    const { calls, send } = manualSend();
    const input = orderedSender(send);
    const a = input("e");
    await tick();
    expect(calls.map((c) => c.data)).toEqual(["e"]);
    const b = input("cho $(");
    const c = input("(6*7))");
    await tick();
    // nothing else goes out while the first send is in flight
    expect(calls.length).toBe(1);
    calls[0].done();
    await a;
    await tick();
    expect(calls.map((c) => c.data)).toEqual(["e", "cho $((6*7))"]);
    calls[1].done();
    await Promise.all([b, c]);
    expect(calls.map((c) => c.data).join("")).toBe("echo $((6*7))");
  });

  it("delivers keystrokes in typed order even when later sends would finish first", async () => {
    const arrived: string[] = [];
    let started = 0;
    const input = orderedSender(async (d) => {
      // each later call finishes sooner than the one before, were they to run side by side
      const delay = Math.max(0, 20 - 2 * started++);
      await new Promise((r) => setTimeout(r, delay));
      arrived.push(d);
    });
    const typed = "echo term-$((6*7))\r";
    for (const ch of typed) {
      void input(ch);
      await tick();
    }
    await input("");
    await new Promise((r) => setTimeout(r, 100));
    expect(arrived.join("")).toBe(typed);
  });

  it("a failed send rejects its callers and the next input still goes out", async () => {
    const { calls, send } = manualSend();
    const input = orderedSender(send);
    const a = input("x");
    await tick();
    calls[0].fail(new Error("session ended"));
    await expect(a).rejects.toThrow("session ended");
    const b = input("y");
    await tick();
    expect(calls.map((c) => c.data)).toEqual(["x", "y"]);
    calls[1].done();
    await b;
  });

  it("ignores empty input", async () => {
    const { calls, send } = manualSend();
    await orderedSender(send)("");
    expect(calls.length).toBe(0);
  });
});
