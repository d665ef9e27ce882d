// The policy's settings, from a PYTORCH_CUDA_ALLOC_CONF-style string: the same grammar, keys,
// limits and defaults as core-sim's src/conf.ts (parseAllocConf), which the simulator and the
// live replays use. A PyTorch process has no Node to run that parser, so this is its C++ twin;
// test/torch-conf.test.ts feeds both the same strings and compares every number. Parsing is not
// policy: the numbers go to the Wasm's setConf / setRoundupDivisions / setVmsConf /
// setLakebedConf exactly as core-sim's applyConf hands them over.
#pragma once

#include <array>
#include <string>

namespace lakebed::torch {

constexpr int kRoundupBuckets = 16;  // core-sim's ROUNDUP_BUCKETS

struct AllocConf {
  double maxSplitSizeBytes = -1;  // -1: unlimited (the Wasm's convention)
  double maxNonSplitRoundingBytes = 20.0 * 1024 * 1024;
  double garbageCollectionThreshold = 0;  // 0: off
  bool expandableSegments = false;
  std::array<int, kRoundupBuckets> roundupDivisions{};  // 0: plain 512-byte rounding
  double largeSegmentSizeBytes = 20.0 * 1024 * 1024;
  double perProcessMemoryFraction = 0;  // 0: none named
  // GMLake's settings (vms), GMLake master's defaults
  int vmmDefragment = 1;
  double fragLimitBytes = 512.0 * 1024 * 1024;
  int defragLevel = 0;
  double reuseLimit = 10;
  double autoGCGiB = 1000;
  int reAlloc = 0;
  // lakebed's settings
  int lakebedSlackPermille = 0;
  int lakebedFitWindow = 4;
  int lakebedLargePageMiB = 20;
};

// Parses `text`; false with *error set to one line (the same words as conf.ts) when it is not valid.
bool ParseAllocConf(const std::string& text, AllocConf* out, std::string* error);

}  // namespace lakebed::torch
