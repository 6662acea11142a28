import { afterEach, describe, expect, it } from "vitest";
import { applyPlatform } from "./theme";

describe("applyPlatform", () => {
  afterEach(() => {
    delete document.documentElement.dataset.platform;
  });

  it("marks Linux (WebKitGTK) only", () => {
    applyPlatform("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)");
    expect(document.documentElement.dataset.platform).toBeUndefined();
    applyPlatform("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36");
    expect(document.documentElement.dataset.platform).toBeUndefined();
    applyPlatform("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15");
    expect(document.documentElement.dataset.platform).toBe("linux");
  });
});
