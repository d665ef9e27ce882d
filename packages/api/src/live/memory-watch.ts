// Device memory really in use during a live replay: cuMemGetInfo's free bytes just before the
// replay, minus its free bytes after each call that took memory; the highest such growth is the
// memory the replay's peak really used (what the simulator predicts as peak reserved, plus what the
// driver itself keeps: page tables, alignment). On host memory it is the machine's free RAM
// (sysinfo), which other processes move and which memfd pages join only when touched: a rough figure
// there, meaningful on the GPU.
import type { Driver, MemorySampler } from "@lakebed/native-cuda";

export class MemoryWatch implements MemorySampler {
  readonly baselineFreeBytes: number;
  peakInUseBytes = 0;
  samples = 0;

  constructor(private readonly driver: Driver) {
    this.baselineFreeBytes = driver.memGetInfo().free;
  }

  sample(): void {
    const used = this.baselineFreeBytes - this.driver.memGetInfo().free;
    this.samples++;
    if (used > this.peakInUseBytes) this.peakInUseBytes = used;
  }
}
