import { afterEach, describe, expect, it } from "vitest";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/svelte";
import { setBackend } from "../lib/backend";
import { toasts } from "../lib/ui";
import Networks from "./Networks.svelte";
import { answerConfirm, installMock } from "./test-backend";

afterEach(() => {
  cleanup();
  setBackend(null);
  toasts.set([]);
});

const row = (name: string) => screen.getAllByTestId("network-row").find((r) => r.dataset.name === name);

describe("Networks page", () => {
  it("lists builtin networks first; they cannot be removed", async () => {
    installMock();
    render(Networks);
    await waitFor(() => expect(screen.getAllByTestId("network-row").length).toBeGreaterThan(3));
    expect(screen.getAllByTestId("network-row").map((r) => r.dataset.name).slice(0, 3)).toEqual(["bridge", "host", "none"]);
    expect((row("bridge")!.querySelector('[data-testid="network-remove"]') as HTMLButtonElement).disabled).toBe(true);
    expect((row("lab")!.querySelector('[data-testid="network-remove"]') as HTMLButtonElement).disabled).toBe(false);
  });

  it("validates the subnet inline and creates the network", async () => {
    const { b } = installMock();
    render(Networks);
    await waitFor(() => expect(row("bridge")).toBeTruthy());
    await fireEvent.input(screen.getByTestId("network-name-input"), { target: { value: "backend" } });
    await fireEvent.input(screen.getByTestId("network-subnet-input"), { target: { value: "10.30.0.5/24" } });
    expect(screen.getByTestId("network-subnet-error").textContent).toBe("host bits are set: did you mean 10.30.0.0/24?");
    expect((screen.getByTestId("network-create") as HTMLButtonElement).disabled).toBe(true);
    await fireEvent.input(screen.getByTestId("network-subnet-input"), { target: { value: "10.30.0.0/24" } });
    expect(screen.queryByTestId("network-subnet-error")).toBeNull();
    await fireEvent.click(screen.getByTestId("network-create"));
    await waitFor(() => expect(b.networkCreate).toHaveBeenCalledWith({ name: "backend", subnet: "10.30.0.0/24", gateway: "", internal: false }));
    await waitFor(() => expect(row("backend")?.textContent).toContain("10.30.0.0/24"));
  });

  it("opens a network to connect and disconnect containers", async () => {
    const { b } = installMock();
    render(Networks);
    await waitFor(() => expect(row("lab")).toBeTruthy());
    await fireEvent.click(row("lab")!.querySelector('[data-testid="network-expand"]')!);
    const select = (await screen.findByTestId("network-connect-select")) as HTMLSelectElement;
    await waitFor(() => expect(select.options.length).toBe(2));
    await fireEvent.change(select, { target: { value: "scratchpad" } });
    await fireEvent.click(screen.getByTestId("network-connect"));
    await waitFor(() => expect(b.networkConnect).toHaveBeenCalledWith("lab", "scratchpad"));
    const member = await screen.findByTestId("network-member");
    expect(member.dataset.name).toBe("scratchpad");
    expect(member.textContent).toContain("10.42.0.2");
    expect(member.textContent).toMatch(/02:42:0a:2a:00:02/);

    const asked = answerConfirm(true);
    await fireEvent.click(screen.getByTestId("network-disconnect"));
    await asked;
    await waitFor(() => expect(b.networkDisconnect).toHaveBeenCalledWith("lab", "scratchpad"));
    await waitFor(() => expect(screen.queryByTestId("network-member")).toBeNull());
  });

  it("removes a user network after confirming", async () => {
    const { b } = installMock();
    render(Networks);
    await waitFor(() => expect(row("lab")).toBeTruthy());
    const asked = answerConfirm(true);
    await fireEvent.click(row("lab")!.querySelector('[data-testid="network-remove"]')!);
    expect((await asked).message).toContain("lab");
    await waitFor(() => expect(b.networkRemove).toHaveBeenCalled());
    await waitFor(() => expect(row("lab")).toBeUndefined());
  });
});
