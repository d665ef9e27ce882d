// What every layer below the JS boundary returns instead of throwing: the N-API layer turns a
// Status into the OOM code or into the JS-defined DeviceError, so C++ never throws across the
// driver seam and a failed call can roll back with ordinary control flow.
#pragma once

#include <string>
#include <utility>

namespace lakebed {

struct Status {
  enum class Code {
    kOk,
    kOutOfMemory,  // the driver (or the capacity, or an injected fault) says the device is full
    kInvalid,      // refused before the driver was called: bad argument or wrong table state
    kDriver,       // the driver call itself failed; driverError names the driver's code
    kInjected,     // fault injection made this call fail as the driver would
    kClosed,       // the driver was torn down
  };
  Code code = Code::kOk;
  std::string driverError;  // "CUDA_ERROR_INVALID_VALUE", "ENOMEM", "" when not from the driver
  std::string message;      // one line, without the call name (the caller prefixes it)

  bool ok() const { return code == Code::kOk; }
  static Status Ok() { return Status(); }
  static Status Make(Code code, std::string driverError, std::string message) {
    Status s;
    s.code = code;
    s.driverError = std::move(driverError);
    s.message = std::move(message);
    return s;
  }
  static Status Invalid(std::string message) { return Make(Code::kInvalid, "", std::move(message)); }
};

inline const char* StatusCodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kOutOfMemory: return "OUT_OF_MEMORY";
    case Status::Code::kInvalid: return "INVALID";
    case Status::Code::kDriver: return "DRIVER";
    case Status::Code::kInjected: return "INJECTED";
    case Status::Code::kClosed: return "CLOSED";
  }
  return "UNKNOWN";
}

}  // namespace lakebed
