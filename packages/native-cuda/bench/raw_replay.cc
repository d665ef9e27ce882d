// The floor of a live replay: makes the very device calls a live replay made (read from the file
// the replay's call recorder wrote, one "kind bytes va handle" line per call, in order), through
// the raw driver function pointers (raw_ops.h), and times each. The live replay's own timing of the
// same call, through Wasm, JavaScript, the addon and DriverCore, minus this, is the native
// backend's overhead per call, measured in the same run on the same GPU.
//
// The live addresses and handles only name things: a handle the live memCreate got is the one a
// later map names, and a map's address lies at the same offset in the live reservation as it does
// here in the raw one. Calls the live replay saw fail (handle or address -1) are skipped. For
// addressReserve the handle column holds the alignment the policy asked for. The host tier's calls
// are made on a pinned arena of the same size (cuMemHostAlloc); the log does not name a copy's
// arena offset, and where in the arena a copy lands does not change its time, so every copy here
// starts at offset 0.
//
//   raw_replay CALLS.txt > MICROS.txt     one time in microseconds per input line (-1: skipped)
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "raw_ops.h"

namespace lakebed {
namespace {

struct Range {
  uint64_t rawBase;
  uint64_t bytes;
};

// The raw address of live address `va` inside one of `ranges` (keyed by live base).
uint64_t Translate(const std::map<uint64_t, Range>& ranges, uint64_t va, const char* what) {
  auto it = ranges.upper_bound(va);
  if (it == ranges.begin()) Die(std::string(what) + ": no range holds this address");
  --it;
  if (va - it->first >= it->second.bytes) Die(std::string(what) + ": no range holds this address");
  return it->second.rawBase + (va - it->first);
}

}  // namespace
}  // namespace lakebed

int main(int argc, char** argv) {
  using namespace lakebed;
  if (argc != 2) Die("usage: raw_replay CALLS.txt");
  FILE* in = fopen(argv[1], "r");
  if (!in) Die(std::string("cannot open ") + argv[1]);
  std::string why;
  const CudaApi* api = LoadCuda(&why);
  if (!api) Die(why);
  RawOps ops(*api, 0);
  std::map<int64_t, uint64_t> handles;        // live handle id -> raw handle
  std::map<uint64_t, Range> reservations;     // live base -> raw base
  std::map<uint64_t, Range> mallocs;          // live va -> raw va
  void* arena = nullptr;                      // the host tier's pinned arena
  uint64_t arenaBytes = 0;
  std::map<uint64_t, uint64_t> mapped;        // raw va -> bytes, to unmap what is left at the end
  char kind[32];
  double bytesD, vaD;
  long long handle;
  std::vector<double> us;
  while (fscanf(in, "%31s %lf %lf %lld", kind, &bytesD, &vaD, &handle) == 4) {
    const uint64_t bytes = static_cast<uint64_t>(bytesD);
    const uint64_t va = static_cast<uint64_t>(vaD);
    const std::string k = kind;
    const double t0 = NowUs();
    double t = -1;
    if (k == "memCreate") {
      if (handle > 0) {
        const uint64_t h = ops.MemCreate(bytes);
        t = NowUs() - t0;
        handles[handle] = h;
      }
    } else if (k == "memRelease") {
      const uint64_t h = handles.at(handle);
      ops.MemRelease(h);
      t = NowUs() - t0;
      handles.erase(handle);
    } else if (k == "addressReserve") {
      if (vaD > 0) {
        const uint64_t alignment = handle > 0 ? static_cast<uint64_t>(handle) : 0;
        CUdeviceptr raw = 0;
        const CUresult r = api->cuMemAddressReserve(&raw, bytes, alignment, 0, 0);
        t = NowUs() - t0;
        if (r != CUDA_SUCCESS) Die("cuMemAddressReserve: " + CudaErrorText(*api, r));
        reservations[va] = Range{raw, bytes};
      }
    } else if (k == "addressFree") {
      const Range r = reservations.at(va);
      ops.AddressFree(r.rawBase, r.bytes);
      t = NowUs() - t0;
      reservations.erase(va);
    } else if (k == "map") {
      const uint64_t raw = Translate(reservations, va, "map");
      const uint64_t h = handles.at(handle);
      const double t1 = NowUs();
      ops.Map(raw, bytes, h);
      t = NowUs() - t1;
      mapped[raw] = bytes;
    } else if (k == "setAccess") {
      const uint64_t raw = Translate(reservations, va, "setAccess");
      const double t1 = NowUs();
      ops.SetAccess(raw, bytes);
      t = NowUs() - t1;
    } else if (k == "unmap") {
      const uint64_t raw = Translate(reservations, va, "unmap");
      const double t1 = NowUs();
      ops.Unmap(raw, bytes);
      t = NowUs() - t1;
      mapped.erase(mapped.lower_bound(raw), mapped.lower_bound(raw + bytes));
    } else if (k == "malloc") {
      if (vaD > 0) {
        const uint64_t raw = ops.Malloc(bytes);
        t = NowUs() - t0;
        mallocs[va] = Range{raw, bytes};
      }
    } else if (k == "free") {
      const uint64_t raw = mallocs.at(va).rawBase;
      const double t1 = NowUs();
      ops.Free(raw);
      t = NowUs() - t1;
      mallocs.erase(va);
    } else if (k == "memGetInfo") {
      ops.MemGetInfo();
      t = NowUs() - t0;
    } else if (k == "hostReserve") {
      if (handle >= 0) {  // the binding logs -1 for a refused one
        const CUresult r = api->cuMemHostAlloc(&arena, bytes, 0);
        t = NowUs() - t0;
        if (r != CUDA_SUCCESS) Die("cuMemHostAlloc: " + CudaErrorText(*api, r));
        arenaBytes = bytes;
      }
    } else if (k == "hostRelease") {
      const CUresult r = api->cuMemFreeHost(arena);
      t = NowUs() - t0;
      if (r != CUDA_SUCCESS) Die("cuMemFreeHost: " + CudaErrorText(*api, r));
      arena = nullptr;
      arenaBytes = 0;
    } else if (k == "copyOut" || k == "copyIn") {
      if (bytes > arenaBytes) Die(k + ": larger than the arena");
      const auto in = mallocs.upper_bound(va);
      const bool inMalloc = in != mallocs.begin() && va - std::prev(in)->first < std::prev(in)->second.bytes;
      const uint64_t raw = inMalloc ? Translate(mallocs, va, k.c_str()) : Translate(reservations, va, k.c_str());
      const double t1 = NowUs();
      const CUresult r = k == "copyOut" ? api->cuMemcpyDtoH(arena, raw, bytes) : api->cuMemcpyHtoD(raw, arena, bytes);
      t = NowUs() - t1;
      if (r != CUDA_SUCCESS) Die(k + ": " + CudaErrorText(*api, r));
    }
    us.push_back(t);
  }
  fclose(in);
  // Whatever the live replay left to its teardown, released here the same way (not timed).
  for (auto& [va, r] : mallocs) ops.Free(r.rawBase);
  if (arena) api->cuMemFreeHost(arena);
  for (auto& [raw, bytes] : mapped) ops.Unmap(raw, bytes);
  for (auto& [va, r] : reservations) ops.AddressFree(r.rawBase, r.bytes);
  for (auto& [id, h] : handles) ops.MemRelease(h);
  for (double t : us) printf("%.3f\n", t);
  return 0;
}
