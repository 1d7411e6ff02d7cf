import { expect, test } from "bun:test";
import { ConfigError, loadConfig } from "../src/config";
import { parseSize } from "../src/util/size";

test("defaults work with no configuration", () => {
  const c = loadConfig([], {});
  expect(c.port).toBe(8080);
  expect(c.dataDir).toEndWith("/ragd-data");
  expect(c.maxFileSize).toBe(512 * 1024 * 1024);
  expect(c.projectQuota).toBe(0);
  expect(c.rateLimitRequests).toBe(0);
  expect(c.apiKey).toBeNull();
});

test("flags win over environment variables", () => {
  const env = { RAGD_PORT: "9000", RAGD_MAX_FILE_SIZE: "1GiB", RAGD_API_KEY: "sk-from-env-1" };
  expect(loadConfig([], env)).toMatchObject({ port: 9000, maxFileSize: 1024 ** 3, apiKey: "sk-from-env-1" });
  expect(loadConfig(["--port", "9100", "--max-file-size=10MB"], env)).toMatchObject({ port: 9100, maxFileSize: 10_000_000 });
});

test("bad values fail at start with a message naming the setting", () => {
  const bad: [string[], Record<string, string>, RegExp][] = [
    [["--port", "http"], {}, /--port: expected a whole number/],
    [["--port", "70000"], {}, /--port: must be between 0 and 65535/],
    [[], { RAGD_PORT: "-1" }, /RAGD_PORT/],
    [["--max-file-size", "lots"], {}, /--max-file-size: expected a size/],
    [["--log-level", "loud"], {}, /must be one of debug, info, warn, error/],
    [["--api-key", "short"], {}, /at least 8/],
    [["--prot", "1"], {}, /unknown option --prot/],
    [["--port"], {}, /--port needs a value/],
  ];
  for (const [args, env, msg] of bad) expect(() => loadConfig(args, env)).toThrow(msg);
  expect(() => loadConfig(["--port", "x"], {})).toThrow(ConfigError);
});

test("sizes", () => {
  expect(parseSize("512MB")).toBe(512e6);
  expect(parseSize("512 MiB")).toBe(512 * 1024 ** 2);
  expect(parseSize("100kb")).toBe(100_000);
  expect(parseSize("42")).toBe(42);
  expect(parseSize("1.5GB")).toBe(1.5e9);
  expect(parseSize("12 parsecs")).toBeNull();
  expect(parseSize("")).toBeNull();
});
