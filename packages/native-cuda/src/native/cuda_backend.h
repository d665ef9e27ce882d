// The cuda backend (backend.h; the user-facing "cuda driver"): each device call is one CUDA driver API call on one GPU's primary context.
#pragma once

#include <memory>

#include "backend.h"

namespace lakebed {

// Opens device `ordinal`: loads the driver, retains the primary context (shared with any CUDA
// runtime user in the process, as PyTorch's is) and reads the allocation granularity.
Status OpenCudaBackend(int ordinal, std::unique_ptr<Backend>* out);

}  // namespace lakebed
