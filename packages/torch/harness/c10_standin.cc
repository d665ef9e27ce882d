#include "c10_standin.h"

#include <atomic>

namespace {
std::atomic<uint64_t> g_destroyed{0};
}

namespace c10 {

Error::Error(SourceLocation where, std::string msg)
    : msg_(std::move(msg)), what_(msg_ + " (raised from " + where.function + " at " + where.file + ":" + std::to_string(where.line) + ")") {}

Error::~Error() { g_destroyed++; }

OutOfMemoryError::~OutOfMemoryError() = default;

}  // namespace c10

uint64_t c10_standin_destroyed(void) { return g_destroyed.load(); }
