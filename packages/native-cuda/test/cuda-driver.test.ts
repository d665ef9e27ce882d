// The cuda driver on this machine: full checks where a GPU is present, and where none is (CI),
// a clean skip that says why, plus the checks of how unavailability is reported.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

import { DeviceError, doctor, OOM, openDriver } from "@lakebed/native-cuda";

const cuda = doctor().drivers.cuda;

function doctorWith(env: Record<string, string>): ReturnType<typeof doctor> {
  const script = 'import("@lakebed/native-cuda").then((m) => console.log(JSON.stringify(m.doctor())))';
  const r = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, ...env }, encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe("cuda availability", () => {
  it("doctor says in one line whether the cuda driver loads here", () => {
    expect(typeof cuda.available).toBe("boolean");
    if (!cuda.available) expect(cuda.reason).toMatch(/^[^\n]+$/);
    expect(doctor().drivers.host).toEqual({ available: true, reason: "" });
  });

  it.runIf(!cuda.available)("openDriver('cuda') throws UNAVAILABLE with the doctor's reason", () => {
    let caught: unknown;
    try {
      openDriver("cuda");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DeviceError);
    expect((caught as DeviceError).code).toBe("UNAVAILABLE");
    expect((caught as DeviceError).message).toBe(`cuda.open: ${cuda.reason}`);
  });

  it("names a missing library, and a library without the driver API", () => {
    const missing = doctorWith({ LAKEBED_LIBCUDA: "/nonexistent/libcuda.so.1" }).drivers.cuda;
    expect(missing.available).toBe(false);
    expect(missing.reason).toMatch(/^cannot load \/nonexistent\/libcuda\.so\.1/);
    const notCuda = doctorWith({ LAKEBED_LIBCUDA: "libm.so.6" }).drivers.cuda;
    expect(notCuda).toEqual({
      available: false,
      reason: "libm.so.6 has no cuInit: the driver is too old for the CUDA virtual memory API (needs CUDA 10.2 or newer)",
    });
  });
});

describe.runIf(cuda.available)(`cuda driver (${cuda.available ? "GPU present" : `skipped: ${cuda.reason}`})`, () => {
  it("stitches chunks, checks the pattern and releases everything", () => {
    const d = openDriver("cuda");
    const G = d.granularity();
    const chunks = Array.from({ length: 8 }, () => d.memCreate(G));
    expect(chunks).not.toContain(OOM);
    const va = d.addressReserve(8 * G);
    chunks.forEach((h, i) => d.map(va + i * G, G, h));
    d.setAccess(va, 8 * G);
    d.fillPattern(va, 8 * G, 1);
    expect(d.checkPattern(va, 8 * G, 1)).toBe(0);
    const m = d.malloc(G);
    d.memset(m, 7, G);
    const out = new Uint8Array(16);
    d.copyToHost(m + G - 16, out);
    expect(out.every((b) => b === 7)).toBe(true);
    expect(d.teardown().errors).toEqual([]);
    expect(d.leakReport().clean).toBe(true);
  });
});
