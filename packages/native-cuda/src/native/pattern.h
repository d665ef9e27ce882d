// The data-verification pattern: fillPattern/checkPattern write and read deterministic bytes at a
// few probes of a range instead of the whole range, so checking a 1 GiB stitched range costs about
// a thousand small copies rather than 1 GiB of traffic, and still proves what stitching can break:
//   - the first and the last bytes of the range;
//   - a probe straddling every granule boundary of the range (the last bytes of one 2 MiB chunk
//     and the first bytes of the next), so each chunk of a stitched range is written and read, and
//     two chunks mapped back to back are seen to be distinct memory in the right order.
// The byte at offset o depends on (seed, o) only, so a chunk filled through one mapping can be
// checked through another mapping of the same chunk at the same relative offset.
#pragma once

#include <algorithm>
#include <cstdint>

namespace lakebed {

constexpr uint64_t kProbeHalfBytes = 64;

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

inline uint8_t PatternByte(uint64_t seed, uint64_t offset) {
  const uint64_t word = SplitMix64(seed ^ SplitMix64(offset >> 3));
  return static_cast<uint8_t>(word >> ((offset & 7) * 8));
}

// Calls probe(offset, bytes) for each probe of a range of `rangeBytes`, in address order.
// Probes never overlap, so a fill followed by a check compares exactly what was written.
template <class Probe>
bool ForEachProbe(uint64_t rangeBytes, uint64_t granuleBytes, Probe probe) {
  uint64_t done = 0;  // everything below `done` is already covered by an earlier probe
  auto emit = [&](uint64_t from, uint64_t to) -> bool {
    from = std::max(from, done);
    to = std::min(to, rangeBytes);
    if (from >= to) return true;
    done = to;
    return probe(from, to - from);
  };
  if (!emit(0, kProbeHalfBytes)) return false;
  for (uint64_t g = granuleBytes; g < rangeBytes; g += granuleBytes)
    if (!emit(g - kProbeHalfBytes, g + kProbeHalfBytes)) return false;
  return emit(rangeBytes > kProbeHalfBytes ? rangeBytes - kProbeHalfBytes : 0, rangeBytes);
}

}  // namespace lakebed
