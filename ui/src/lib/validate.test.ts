import { describe, expect, it } from "vitest";
import {
  parseCidr,
  parseReference,
  validateGateway,
  validateHostPort,
  validateInsecure,
  validateMirrorUrl,
  validateName,
  validateReference,
  validateSubnet,
} from "./validate";

describe("validateMirrorUrl", () => {
  it.each([
    "https://mirror.gcr.io",
    "http://127.0.0.1:5001",
    "https://mirror.example.com:8443/v2-proxy",
    "https://mirror.example.com/",
    "http://[::1]:5000",
    "http://localhost:5000/a/b_c-d.e~f",
  ])("accepts %s", (u) => {
    expect(validateMirrorUrl(u)).toBeNull();
  });

  it.each([
    ["", /enter a URL/],
    ["mirror.gcr.io", /http:\/\/ or https:\/\//],
    ["ftp://mirror.example.com", /http or https, not "ftp"/],
    [" https://mirror.gcr.io", /spaces/],
    ["https://mirror.gcr.io ", /spaces/],
    ["https://mirror .gcr.io", /spaces/],
    ["https://mirror.gcr.io?x=1", /query/],
    ["https://mirror.gcr.io/#top", /fragment/],
    ["https://user:pw@mirror.gcr.io", /user name/],
    ["https://", /host is missing/],
    ["https://:5000", /host is missing/],
    ["https://mirror.gcr.io:99999", /out of range/],
    ["https://mirror.gcr.io:0", /out of range/],
    ["https://mirror.gcr.io:abc", /not a number/],
    ["https://-bad-.example", /not a valid host name/],
    ["https://300.1.1.1", /not a valid IPv4/],
    ["https://mirror.example.com//v2", /empty segment/],
    ["https://mirror.example.com/a<b", /characters/],
    ["http://[::zz]:5000", /IPv6/],
  ])("rejects %j", (u, why) => {
    expect(validateMirrorUrl(u)).toMatch(why);
  });
});

describe("validateHostPort / validateInsecure", () => {
  it("takes host[:port]", () => {
    expect(validateHostPort("docker.io")).toBeNull();
    expect(validateHostPort("registry.local:5000")).toBeNull();
    expect(validateHostPort("127.0.0.1:5000")).toBeNull();
    expect(validateHostPort("[::1]:5000")).toBeNull();
    expect(validateHostPort("https://ghcr.io")).toMatch(/without a scheme/);
    expect(validateHostPort("a:b:c")).toMatch(/not host\[:port\]/);
    expect(validateHostPort("reg:70000")).toMatch(/out of range/);
  });

  it("takes host[:port] or CIDR for insecure registries", () => {
    expect(validateInsecure("10.0.0.0/8")).toBeNull();
    expect(validateInsecure("192.168.1.10:5000")).toBeNull();
    expect(validateInsecure("10.0.0.0/33")).toMatch(/not a valid CIDR/);
    expect(validateInsecure("http://10.0.0.1")).toMatch(/without the scheme/);
    expect(validateInsecure("a b")).toMatch(/spaces/);
  });
});

describe("subnets and gateways", () => {
  it("parses CIDRs", () => {
    expect(parseCidr("10.1.0.0/16")).toEqual({ base: 0x0a010000, prefix: 16 });
    expect(parseCidr("10.1.0.0/040")).toBeNull();
    expect(parseCidr("10.1.0/16")).toBeNull();
  });

  it("validates a subnet as typed", () => {
    expect(validateSubnet("")).toBeNull();
    expect(validateSubnet("10.20.0.0/24")).toBeNull();
    expect(validateSubnet("10.20.0.0")).toMatch(/prefix length/);
    expect(validateSubnet("10.20.0.1/24")).toBe("host bits are set: did you mean 10.20.0.0/24?");
    expect(validateSubnet("10.20.0.0/40")).toMatch(/0–32/);
    expect(validateSubnet("10.20.0.0/31")).toMatch(/between \/8 and \/30/);
    expect(validateSubnet("10.256.0.0/16")).toMatch(/not an IPv4 address/);
  });

  it("checks the gateway is inside the subnet", () => {
    expect(validateGateway("", "")).toBeNull();
    expect(validateGateway("10.20.0.1", "10.20.0.0/24")).toBeNull();
    expect(validateGateway("10.21.0.1", "10.20.0.0/24")).toMatch(/not inside/);
    expect(validateGateway("10.20.0.255", "10.20.0.0/24")).toMatch(/broadcast/);
    expect(validateGateway("10.20.0.1", "")).toMatch(/needs a subnet/);
    expect(validateGateway("x", "10.20.0.0/24")).toMatch(/not an IPv4/);
  });
});

describe("names and references", () => {
  it("validates volume/network names", () => {
    expect(validateName("pgdata")).toBeNull();
    expect(validateName("my_vol.1-a")).toBeNull();
    expect(validateName("a")).toMatch(/at least 2/);
    expect(validateName("-x")).toMatch(/letters, digits/);
    expect(validateName("a b")).toMatch(/spaces/);
  });

  it("parses references like the engine", () => {
    expect(parseReference("busybox")).toEqual({ registry: "docker.io", repository: "busybox", tag: "latest", digest: null });
    expect(parseReference("library/python:3.12-slim")?.repository).toBe("python");
    expect(parseReference("127.0.0.1:5000/app:dev")).toMatchObject({ registry: "127.0.0.1:5000", repository: "127.0.0.1:5000/app", tag: "dev" });
    expect(parseReference("localhost/team/app")).toMatchObject({ registry: "localhost", repository: "localhost/team/app" });
    expect(parseReference("user/app:1.0")).toMatchObject({ registry: "docker.io", repository: "user/app" });
    expect(parseReference("Busybox")).toBeNull();
    expect(parseReference("app:")).toBeNull();
    expect(validateReference("Busybox")).toMatch(/lowercase/);
    expect(validateReference("a b")).toMatch(/spaces/);
    expect(validateReference("alpine:3.20")).toBeNull();
  });
});
