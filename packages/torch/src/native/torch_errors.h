// PyTorch's own out-of-memory exception, thrown from the library without PyTorch's headers.
//
// PyTorch's CUDAPluggableAllocator (torch/csrc/cuda/CUDAPluggableAllocator.cpp, 2.x) does not check
// what the malloc function returns: a null pointer becomes the tensor's storage, and the first
// kernel that touches it faults the device. So the library must throw, and the exception decides
// what Python sees: torch's HANDLE_TH_ERRORS (torch/csrc/Exceptions.h) turns c10::OutOfMemoryError
// into torch.OutOfMemoryError (torch.cuda.OutOfMemoryError is the same class), any other
// std::exception into a plain RuntimeError.
//
// A c10::OutOfMemoryError is built from what the running PyTorch exports (Itanium C++ ABI): c10's
// exported constructor c10::Error(SourceLocation, std::string) builds the object in exception
// storage far larger than any version's c10::Error; its vtable pointer is then set to
// c10::OutOfMemoryError's (which overrides nothing, so only the type differs); it is thrown with
// that class's typeinfo and the destructor its vtable names. Nothing depends on c10::Error's
// fields, which change between versions. The symbols are looked up in the c10 libraries PyTorch
// already loaded (RTLD_NOLOAD): libc10.so for the constructor, whichever of libc10.so and
// libc10_cuda.so holds the class's vtable and typeinfo.
#pragma once

#include <string>

namespace lakebed::torch {

// Binds the thrower to the loaded PyTorch; false with *why naming what is missing (then
// ThrowOutOfMemory throws std::runtime_error, which Python sees as a RuntimeError).
bool BindTorchErrors(std::string* why);
// Throws c10::OutOfMemoryError carrying `message` once bound, else std::runtime_error(message).
[[noreturn]] void ThrowOutOfMemory(const std::string& message);

}  // namespace lakebed::torch
