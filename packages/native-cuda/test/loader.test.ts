// The loader tries the builds it knows, including the .device/ copy used on the GPU machine, and
// says what to do when none loads. The C++ side re-checks arguments on its own.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

import { DeviceError, doctor } from "@lakebed/native-cuda";

const pkgRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const scratch = mkdtempSync(join(tmpdir(), "lakebed-loader-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A copy of the built package without its build/ folder, as on a machine with no compiler. */
function bareCopy(name: string): string {
  const root = join(scratch, name);
  mkdirSync(join(root, "dist"), { recursive: true });
  copyFileSync(join(pkgRoot, "dist", "index.js"), join(root, "dist", "index.js"));
  copyFileSync(join(pkgRoot, "package.json"), join(root, "package.json"));
  return root;
}

function doctorOf(root: string, env: Record<string, string> = {}) {
  const script = `import(${JSON.stringify(join(root, "dist", "index.js"))}).then((m) => console.log(JSON.stringify(m.doctor())))`;
  const r = spawnSync(process.execPath, ["-e", script], {
    env: { ...process.env, LAKEBED_NATIVE_ADDON: "", ...env },
    encoding: "utf8",
  });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as ReturnType<typeof doctor>;
}

describe("loader", () => {
  it("loads the package's own build here", () => {
    const report = doctor();
    expect(report.addon.loaded).toBe(true);
    expect(report.addon.path).toMatch(/build\/Release\/lakebed_native\.node$/);
  });

  it("with no build, lists where it looked and says what to do", () => {
    const root = bareCopy("none");
    const report = doctorOf(root);
    expect(report.addon.loaded).toBe(false);
    expect(report.addon.error).toContain(`${join(root, "build", "Release", "lakebed_native.node")}: not there`);
    expect(report.addon.error).toContain(`${join(root, ".device", "lakebed_native.node")}: not there`);
    expect(report.addon.error).toContain("To fix it: run `npm run build -w @lakebed/native-cuda`");
    expect(report.drivers.host.available).toBe(false);
  });

  it("finds a prebuilt copy in .device/ of a folder above the package (the GPU machine)", () => {
    const root = bareCopy("device");
    mkdirSync(join(scratch, ".device"), { recursive: true });
    const copy = join(scratch, ".device", "lakebed_native.node");
    copyFileSync(join(pkgRoot, "build", "Release", "lakebed_native.node"), copy);
    const report = doctorOf(root);
    expect(report.addon).toEqual({ loaded: true, path: copy, error: null });
    expect(report.drivers.host.available).toBe(true);
    rmSync(join(scratch, ".device"), { recursive: true });
  });

  it("takes LAKEBED_NATIVE_ADDON first, and reports an unloadable file", () => {
    const root = bareCopy("env");
    const report = doctorOf(root, { LAKEBED_NATIVE_ADDON: join(pkgRoot, "package.json") });
    expect(report.addon.loaded).toBe(false);
    expect(report.addon.error).toMatch(/package\.json: /);
  });
});

describe("the addon's own checks", () => {
  // The same module instance the package loaded, so its errors are the package's DeviceError.
  const binding = createRequire(import.meta.url)(join(pkgRoot, "build", "Release", "lakebed_native.node"));

  it("throws DeviceError for arguments that skipped the JS validation", () => {
    const d = new binding.Driver("host", 0, 0);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, "2097152", undefined]) {
      let caught: unknown;
      try {
        d.memCreate(bad);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(DeviceError);
      expect((caught as DeviceError).code).toBe("INVALID");
      expect((caught as DeviceError).call).toBe("memCreate");
    }
    expect(() => d.memCreate(3)).toThrow(/multiples of 2097152/);
    expect(() => d.copyToHost(2 ** 21, {}, 4)).toThrow(/TypedArray/);
    expect(() => new binding.Driver("gpu", 0, 0)).toThrow(DeviceError);
    d.teardown();
  });
});
