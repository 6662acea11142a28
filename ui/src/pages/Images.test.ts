import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend } from "../lib/backend";
import { toasts } from "../lib/ui";
import Images from "./Images.svelte";
import { answerConfirm, installMock } from "./test-backend";

afterEach(() => {
  cleanup();
  setBackend(null);
  toasts.set([]);
});

describe("Images page", () => {
  it("lists images with in-use badges", async () => {
    installMock();
    render(Images);
    await waitFor(() => expect(screen.getAllByTestId("image-row").length).toBeGreaterThan(5));
    const nginx = screen.getAllByTestId("image-row").find((r) => r.dataset.repo === "nginx")!;
    expect(nginx.dataset.tag).toBe("1.27-alpine");
    expect(nginx.dataset.id).toMatch(/^sha256:/);
    expect(nginx.querySelector('[data-testid="image-in-use"]')?.textContent).toContain("2");
    await fireEvent.input(screen.getByTestId("image-search"), { target: { value: "python" } });
    expect(screen.getAllByTestId("image-row").map((r) => r.dataset.repo)).toEqual(["python"]);
  });

  it("shows one progress bar per layer while pulling, then the new image", async () => {
    const { b } = installMock({ speed: 0.05 });
    render(Images);
    await waitFor(() => expect(screen.getAllByTestId("image-row").length).toBeGreaterThan(0));
    await fireEvent.input(screen.getByTestId("pull-input"), { target: { value: "alpine:3.21" } });
    await fireEvent.click(screen.getByTestId("pull-button"));
    const panel = await screen.findByTestId("pull-progress");
    // mid-pull: three layers, at least one with bytes and a partial bar
    await waitFor(() => {
      const bars = screen.getAllByTestId("layer-progress");
      expect(bars).toHaveLength(3);
      expect(bars.some((l) => l.dataset.status === "Downloading" && / \/ /.test(l.textContent ?? ""))).toBe(true);
    });
    expect(new Set(screen.getAllByTestId("layer-progress").map((l) => l.dataset.id)).size).toBe(3);
    await waitFor(() => expect(panel.dataset.phase).toBe("done"), { timeout: 3000 });
    expect(screen.getAllByTestId("layer-progress").every((l) => l.dataset.status === "Pull complete")).toBe(true);
    expect(panel.textContent).toContain("Downloaded newer image for alpine:3.21");
    expect(b.imagePull).toHaveBeenCalledWith("alpine:3.21", expect.any(Function));
    await waitFor(() => expect(screen.getAllByTestId("image-row").some((r) => r.dataset.repo === "alpine" && r.dataset.tag === "3.21")).toBe(true));
  });

  it("shows a failed pull inline and as an error toast", async () => {
    installMock();
    render(Images);
    await fireEvent.input(screen.getByTestId("pull-input"), { target: { value: "nosuch" } });
    await fireEvent.click(screen.getByTestId("pull-button"));
    const err = await screen.findByTestId("progress-error");
    expect(err.textContent).toMatch(/pull access denied for nosuch/);
    expect(screen.getByTestId("pull-progress").dataset.phase).toBe("error");
    await waitFor(() => expect(get(toasts).some((t) => t.kind === "error" && /nosuch/.test(t.message))).toBe(true));
  });

  it("validates the reference before pulling", async () => {
    const { b } = installMock();
    render(Images);
    await fireEvent.input(screen.getByTestId("pull-input"), { target: { value: "Alpine" } });
    expect(screen.getByText(/must be lowercase/)).toBeTruthy();
    expect((screen.getByTestId("pull-button") as HTMLButtonElement).disabled).toBe(true);
    expect(b.imagePull).not.toHaveBeenCalled();
  });

  it("removes an in-use image with force after confirming", async () => {
    const { b } = installMock();
    render(Images);
    await waitFor(() => expect(screen.getAllByTestId("image-row").length).toBeGreaterThan(5));
    const row = screen.getAllByTestId("image-row").find((r) => r.dataset.repo === "redis")!;
    const asked = answerConfirm(true);
    await fireEvent.click(row.querySelector('[data-testid="image-remove"]')!);
    expect((await asked).action).toBe("Force remove");
    await waitFor(() => expect(b.imageRemove).toHaveBeenCalledWith("redis:7", true));
    await waitFor(() => expect(screen.getAllByTestId("image-row").some((r) => r.dataset.repo === "redis")).toBe(false));
  });

  it("does nothing when the removal is cancelled", async () => {
    const { b } = installMock();
    render(Images);
    await waitFor(() => expect(screen.getAllByTestId("image-row").length).toBeGreaterThan(5));
    const row = screen.getAllByTestId("image-row").find((r) => r.dataset.repo === "busybox")!;
    const asked = answerConfirm(false);
    await fireEvent.click(row.querySelector('[data-testid="image-remove"]')!);
    expect((await asked).action).toBe("Remove");
    await new Promise((r) => setTimeout(r, 20));
    expect(b.imageRemove).not.toHaveBeenCalled();
  });

  it("tags, shows history, and logs in when a push is refused", async () => {
    const { b } = installMock();
    render(Images);
    await waitFor(() => expect(screen.getAllByTestId("image-row").length).toBeGreaterThan(5));
    const row = () => screen.getAllByTestId("image-row").find((r) => r.dataset.repo === "busybox")!;
    await fireEvent.click(row().querySelector('[data-testid="image-tag"]')!);
    await fireEvent.input(screen.getByTestId("tag-input"), { target: { value: "127.0.0.1:5000/busybox:v1" } });
    await fireEvent.click(screen.getByTestId("tag-submit"));
    await waitFor(() => expect(b.imageTag).toHaveBeenCalledWith("busybox:latest", "127.0.0.1:5000/busybox:v1"));
    await waitFor(() => expect(screen.queryByTestId("tag-input")).toBeNull());

    await fireEvent.click(row().querySelector('[data-testid="image-history"]')!);
    await waitFor(() => expect(screen.getAllByTestId("history-row")).toHaveLength(2));
    await fireEvent.keyDown(screen.getByTestId("history-dialog"), { key: "Escape" });

    const pushed = await waitFor(() => {
      const r = screen.getAllByTestId("image-row").find((x) => x.dataset.repo === "127.0.0.1:5000/busybox");
      expect(r?.dataset.tag).toBe("v1");
      return r!;
    });
    await fireEvent.click(pushed.querySelector('[data-testid="image-push"]')!);
    await fireEvent.click(screen.getByTestId("push-submit"));
    await screen.findByTestId("login-username");
    expect((screen.getByTestId("login-server") as HTMLInputElement).value).toBe("127.0.0.1:5000");
    await fireEvent.input(screen.getByTestId("login-username"), { target: { value: "dev" } });
    await fireEvent.input(screen.getByTestId("login-password"), { target: { value: "secret" } });
    await fireEvent.click(screen.getByTestId("login-submit"));
    await waitFor(() => expect(b.registryLogin).toHaveBeenCalledWith({ server: "127.0.0.1:5000", username: "dev", password: "secret" }));
    // the push runs again after the login, and succeeds
    await waitFor(() => expect(screen.getByTestId("push-progress").dataset.phase).toBe("done"));
    expect(b.imagePush).toHaveBeenCalledTimes(2);
  });
});
