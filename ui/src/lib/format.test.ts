import { describe, expect, it } from "vitest";
import { formatAgo, formatBytes, formatMemory, formatPercent, formatPort, formatUptime, humanDuration, shortId, shortImage } from "./format";

describe("formatBytes", () => {
  it("uses docker's decimal units with three significant digits", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(-5)).toBe("0 B");
    expect(formatBytes(NaN)).toBe("0 B");
    expect(formatBytes(999)).toBe("999 B");
    expect(formatBytes(1000)).toBe("1 kB");
    expect(formatBytes(1234)).toBe("1.23 kB");
    expect(formatBytes(1_200_000)).toBe("1.2 MB");
    expect(formatBytes(12_345_678)).toBe("12.3 MB");
    expect(formatBytes(187_654_321)).toBe("188 MB");
    expect(formatBytes(13_400_000_000)).toBe("13.4 GB");
    expect(formatBytes(2e15)).toBe("2 PB");
  });
  it("binary units for memory", () => {
    expect(formatMemory(1024)).toBe("1 KiB");
    expect(formatMemory(73.2 * 1024 * 1024)).toBe("73.2 MiB");
    expect(formatMemory(8 * 1024 ** 3)).toBe("8 GiB");
  });
});

describe("formatAgo", () => {
  const now = Date.UTC(2024, 4, 1, 12, 0, 0);
  const s = now / 1000;
  it("reads like docker", () => {
    expect(formatAgo(s - 2, now)).toBe("just now");
    expect(formatAgo(s - 30, now)).toBe("30 seconds ago");
    expect(formatAgo(s - 60, now)).toBe("about a minute ago");
    expect(formatAgo(s - 180, now)).toBe("3 minutes ago");
    expect(formatAgo(s - 3600, now)).toBe("about an hour ago");
    expect(formatAgo(s - 5 * 3600, now)).toBe("5 hours ago");
    expect(formatAgo(s - 3 * 86400, now)).toBe("3 days ago");
    expect(formatAgo(s - 21 * 86400, now)).toBe("3 weeks ago");
    expect(formatAgo(s - 90 * 86400, now)).toBe("3 months ago");
    expect(formatAgo(s - 3 * 365 * 86400, now)).toBe("3 years ago");
  });
  it("handles the future and unknown", () => {
    expect(formatAgo(s + 100, now)).toBe("just now");
    expect(formatAgo(0, now)).toBe("—");
  });
  it("uses the real clock by default", () => {
    expect(formatAgo(Date.now() / 1000 - 120)).toBe("2 minutes ago");
  });
});

describe("durations", () => {
  it("humanDuration and formatUptime", () => {
    expect(humanDuration(0.5)).toBe("less than a second");
    expect(humanDuration(1)).toBe("1 second");
    expect(humanDuration(47 * 3600)).toBe("47 hours");
    const now = Date.parse("2024-05-01T12:00:00Z");
    expect(formatUptime("2024-05-01T11:57:00Z", now)).toBe("3 minutes");
    expect(formatUptime("", now)).toBe("");
    expect(formatUptime(now / 1000 - 7200, now)).toBe("2 hours");
  });
});

describe("ids and misc", () => {
  it("shortId drops the algorithm and keeps 12", () => {
    expect(shortId("sha256:0123456789abcdef0123")).toBe("0123456789ab");
    expect(shortId("fedcba9876543210")).toBe("fedcba987654");
    expect(shortId("")).toBe("");
  });
  it("formatPercent", () => {
    expect(formatPercent(0)).toBe("0.0%");
    expect(formatPercent(12.345)).toBe("12.3%");
    expect(formatPercent(215.4)).toBe("215%");
    expect(formatPercent(-1)).toBe("0.0%");
  });
  it("formatPort", () => {
    expect(formatPort({ host_ip: "0.0.0.0", host_port: 8080, container_port: 80, protocol: "tcp" })).toBe("8080→80");
    expect(formatPort({ host_ip: "", host_port: null, container_port: 5432, protocol: "tcp" })).toBe("5432/tcp");
    expect(formatPort({ host_ip: "", host_port: 53, container_port: 53, protocol: "udp" })).toBe("53→53/udp");
  });
  it("shortImage", () => {
    expect(shortImage("docker.io/library/nginx:latest")).toBe("nginx:latest");
    expect(shortImage("docker.io/acme/app:1")).toBe("acme/app:1");
    expect(shortImage("ghcr.io/acme/app:1")).toBe("ghcr.io/acme/app:1");
    expect(shortImage("sha256:abcdef0123456789")).toBe("abcdef012345");
  });
});
