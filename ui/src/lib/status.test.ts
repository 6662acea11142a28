import { describe, expect, it } from "vitest";
import { compactUptime } from "./status";

describe("compactUptime", () => {
  it("drops Up and the health or pause suffix", () => {
    expect(compactUptime("Up 3 minutes (healthy)")).toBe("3 minutes");
    expect(compactUptime("Up 2 hours (Paused)")).toBe("2 hours");
    expect(compactUptime("Up 5 seconds (health: starting)")).toBe("5 seconds");
  });
  it("turns About an hour into 1 hour and the first second into just now", () => {
    expect(compactUptime("Up About an hour")).toBe("1 hour");
    expect(compactUptime("Up About a minute")).toBe("1 minute");
    expect(compactUptime("Up Less than a second")).toBe("just now");
  });
});
