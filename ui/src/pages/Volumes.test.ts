import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { get } from "svelte/store";
import { setBackend } from "../lib/backend";
import { toasts } from "../lib/ui";
import Volumes from "./Volumes.svelte";
import { answerConfirm, installMock } from "./test-backend";

afterEach(() => {
  cleanup();
  setBackend(null);
  toasts.set([]);
});

const names = () => screen.getAllByTestId("volume-row").map((r) => r.dataset.name);

describe("Volumes page", () => {
  it("lists volumes with the containers using them", async () => {
    installMock();
    render(Volumes);
    await waitFor(() => expect(names()).toContain("shop_pgdata"));
    const row = screen.getAllByTestId("volume-row").find((r) => r.dataset.name === "shop_pgdata")!;
    expect(row.textContent).toContain("shop-db-1");
    expect(row.textContent).toContain("local");
  });

  it("creates a volume, validating the name as typed", async () => {
    const { b } = installMock();
    render(Volumes);
    await waitFor(() => expect(names().length).toBeGreaterThan(0));
    const input = screen.getByTestId("volume-name-input");
    await fireEvent.input(input, { target: { value: "bad name" } });
    expect(screen.getByText("must not contain spaces")).toBeTruthy();
    expect((screen.getByTestId("volume-create") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(input, { target: { value: "cache-1" } });
    await fireEvent.click(screen.getByTestId("volume-create"));
    await waitFor(() => expect(b.volumeCreate).toHaveBeenCalledWith("cache-1"));
    await waitFor(() => expect(names()).toContain("cache-1"));
    expect((input as HTMLInputElement).value).toBe("");
  });

  it("removes after confirming, and not when cancelled", async () => {
    const { b } = installMock();
    render(Volumes);
    await waitFor(() => expect(names()).toContain("scratch"));
    const btn = () => screen.getAllByTestId("volume-row").find((r) => r.dataset.name === "scratch")!.querySelector<HTMLElement>('[data-testid="volume-remove"]')!;

    let asked = answerConfirm(false);
    await fireEvent.click(btn());
    expect((await asked).message).toContain("scratch");
    await new Promise((r) => setTimeout(r, 20));
    expect(b.volumeRemove).not.toHaveBeenCalled();

    asked = answerConfirm(true);
    await fireEvent.click(btn());
    expect((await asked).action).toBe("Remove");
    await waitFor(() => expect(b.volumeRemove).toHaveBeenCalledWith("scratch", false));
    await waitFor(() => expect(names()).not.toContain("scratch"));
  });

  it("offers force for a volume in use and shows the engine's refusal", async () => {
    const { b } = installMock();
    render(Volumes);
    await waitFor(() => expect(names()).toContain("shop_pgdata"));
    const asked = answerConfirm(true);
    await fireEvent.click(screen.getAllByTestId("volume-row").find((r) => r.dataset.name === "shop_pgdata")!.querySelector('[data-testid="volume-remove"]')!);
    const req = await asked;
    expect(req.action).toBe("Force remove");
    expect(req.message).toContain("shop-db-1");
    await waitFor(() => expect(b.volumeRemove).toHaveBeenCalledWith("shop_pgdata", true));
    await waitFor(() => expect(get(toasts).some((t) => t.kind === "error" && /volume is in use/.test(t.message))).toBe(true));
  });

  it("prunes unused volumes", async () => {
    const { b } = installMock();
    render(Volumes);
    await waitFor(() => expect(names()).toContain("scratch"));
    const asked = answerConfirm(true);
    await fireEvent.click(screen.getByTestId("volumes-prune"));
    expect((await asked).message).toMatch(/Remove 2 volumes/);
    await waitFor(() => expect(b.volumesPrune).toHaveBeenCalled());
    await waitFor(() => expect(names()).toEqual(["shop_pgdata", "prometheus-data"]));
  });
});

describe("Volumes page, empty", () => {
  it("shows the empty state", async () => {
    const { b } = installMock();
    b.volumesList.mockResolvedValue([]);
    render(Volumes);
    await screen.findByTestId("empty-state");
    expect(screen.queryAllByTestId("volume-row")).toHaveLength(0);
  });
});
