// A trace's requests as the harness's latency mode and bench/wrapper_bench.cc replay them, one line
// each: "a id size stream" a malloc, "r id" the free of block id. Other lines (the replay format's
// completions, which follow their requests there, and out-of-memory requests) are passed over: the
// frees are plain ones.
#pragma once

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace lakebed::torch::harness {

struct Request {
  char op;
  uint64_t id, size, stream;
};

// The requests in `path`, in order; none when it cannot be read.
inline std::vector<Request> ReadRequests(const char* path) {
  std::vector<Request> requests;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    Request r{0, 0, 0, 0};
    ls >> r.op;
    if (r.op == 'a') ls >> r.id >> r.size >> r.stream;
    else if (r.op == 'r') ls >> r.id;
    else continue;
    requests.push_back(r);
  }
  return requests;
}

}  // namespace lakebed::torch::harness
