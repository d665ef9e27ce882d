// Fault injection: "every Nth call of kind K fails as the driver would". It is how CI, which has no
// GPU, walks the error paths of the policies and of DriverCore (a failed call must leave the
// tables exact). The count covers only calls that passed validation, i.e. the calls that would
// have reached the driver, so "every 3rd map" means every 3rd real cuMemMap.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "call_kinds.h"
#include "status.h"

namespace lakebed {

class FaultInjector {
 public:
  // n == 0 turns injection off for that kind; setting a kind restarts its count.
  void SetEvery(CallKind kind, uint64_t n) {
    every_[Index(kind)] = n;
    seen_[Index(kind)] = 0;
  }
  uint64_t Every(CallKind kind) const { return every_[Index(kind)]; }
  void DisableAll() {
    every_.fill(0);
    seen_.fill(0);
  }

  // Counts one call about to reach the driver; returns the failure to report instead, or Ok.
  Status Check(CallKind kind, const char* driverOomName) {
    const size_t i = Index(kind);
    if (every_[i] == 0) return Status::Ok();
    if (++seen_[i] % every_[i] != 0) return Status::Ok();
    injected_[i]++;
    const std::string why = std::string("injected fault (failEvery ") + CallName(kind) + ": " +
                            std::to_string(every_[i]) + ")";
    if (CallFaultShape(kind) == FaultShape::kOom)
      return Status::Make(Status::Code::kOutOfMemory, driverOomName, why);
    return Status::Make(Status::Code::kInjected, "INJECTED", why);
  }

  uint64_t Injected(CallKind kind) const { return injected_[Index(kind)]; }

 private:
  static size_t Index(CallKind kind) { return static_cast<size_t>(kind); }
  std::array<uint64_t, kCallKindCount> every_{};
  std::array<uint64_t, kCallKindCount> seen_{};
  std::array<uint64_t, kCallKindCount> injected_{};
};

}  // namespace lakebed
