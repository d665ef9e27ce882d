// A stand-in for PyTorch's libc10.so in the host harness (no PyTorch in CI): the two classes of
// c10/util/Exception.h that the library's out-of-memory exception (src/native/torch_errors.h) is
// made of, under their real names, so that the library's lookup, construction and throw run as
// they do in a PyTorch process and the harness can catch `const c10::OutOfMemoryError&` as
// torch's HANDLE_TH_ERRORS does. The fields are not PyTorch's, on purpose: the library must not
// depend on them. Built as build/c10-standin/libc10.so (soname libc10.so) by scripts/build.mjs.
#pragma once

#include <cstdint>
#include <exception>
#include <string>

#define C10_STANDIN_API __attribute__((visibility("default")))

namespace c10 {

struct SourceLocation {
  const char* function;
  const char* file;
  uint32_t line;
};

class C10_STANDIN_API Error : public std::exception {
 public:
  Error(SourceLocation where, std::string msg);
  ~Error() override;
  const char* what() const noexcept override { return what_.c_str(); }
  virtual const char* what_without_backtrace() const noexcept { return msg_.c_str(); }

 private:
  std::string msg_;
  std::string what_;  // the message and where it was raised, as c10's what() has it
};

class C10_STANDIN_API OutOfMemoryError : public Error {
 public:
  using Error::Error;
  ~OutOfMemoryError() override;  // out of line: the vtable and typeinfo live in the library, as in c10
};

}  // namespace c10

// How many c10::Error objects were destroyed: the thrown exception's destructor ran exactly once.
extern "C" C10_STANDIN_API uint64_t c10_standin_destroyed(void);
