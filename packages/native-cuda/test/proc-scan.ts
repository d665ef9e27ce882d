// Looks for a driver's memory from outside: its memfds are named "lakebed:<pid>:d<n>", and they
// show in /proc/<pid>/fd (as links to "/memfd:lakebed:... (deleted)") and in /proc/<pid>/maps.
import { readFileSync, readdirSync, readlinkSync } from "node:fs";

function safe<T>(f: () => T, fallback: T): T {
  try {
    return f();
  } catch {
    return fallback; // the process ended or is not ours to read
  }
}

/** memfd link names held open by a process, filtered by a substring. */
export function memfdsOf(pid: number | "self", needle: string): string[] {
  const dir = `/proc/${pid}/fd`;
  return safe(() => readdirSync(dir), [] as string[])
    .map((fd) => safe(() => readlinkSync(`${dir}/${fd}`), ""))
    .filter((link) => link.includes("memfd:") && link.includes(needle));
}

/** Lines of /proc/<pid>/maps that map a memfd whose name contains the needle. */
export function memfdMappingsOf(pid: number | "self", needle: string): string[] {
  const maps = safe(() => readFileSync(`/proc/${pid}/maps`, "utf8"), "");
  return maps.split("\n").filter((line) => line.includes("memfd:") && line.includes(needle));
}

/** Every process on the machine that holds or maps a memfd whose name contains the needle. */
export function holdersAnywhere(needle: string): number[] {
  const pids = readdirSync("/proc").filter((name) => /^\d+$/.test(name)).map(Number);
  return pids.filter((pid) => memfdsOf(pid, needle).length > 0 || memfdMappingsOf(pid, needle).length > 0);
}
