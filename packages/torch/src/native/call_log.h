// Every device call the policy made through the library, in order: its kind (native-cuda's
// CALL_KINDS index, which core-sim's DEVICE_CALL_NAMES follows) and the bytes it named. The same
// log the live replay keeps for the Node addon (packages/api/src/live/call-recorder.ts), so a test
// can replay one trace through both and compare the two sequences call for call.
#pragma once

#include <cstdint>
#include <vector>

#include "call_kinds.h"

namespace lakebed::torch {

class CallLog {
 public:
  void Add(CallKind kind, uint64_t bytes) {
    if (!on_) return;
    kinds_.push_back(static_cast<uint8_t>(kind));
    bytes_.push_back(bytes);
  }
  void SetOn(bool on) { on_ = on; }
  size_t size() const { return kinds_.size(); }
  const std::vector<uint8_t>& kinds() const { return kinds_; }
  const std::vector<uint64_t>& bytes() const { return bytes_; }

 private:
  bool on_ = false;
  std::vector<uint8_t> kinds_;
  std::vector<uint64_t> bytes_;
};

}  // namespace lakebed::torch
