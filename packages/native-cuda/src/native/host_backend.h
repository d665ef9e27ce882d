// The host backend (backend.h; the user-facing "host driver"): the CUDA virtual-memory semantics made of host memory, so the same compiled
// policies run, and their stitching is really exercised, on machines without a GPU (CI).
#pragma once

#include <memory>
#include <string>

#include "backend.h"

namespace lakebed {

// `label` names the memfds (visible in /proc/PID/fd and /proc/PID/maps as "memfd:<label>"), so
// tests can see exactly which physical chunks a driver holds.
std::unique_ptr<Backend> MakeHostBackend(const std::string& label);

}  // namespace lakebed
