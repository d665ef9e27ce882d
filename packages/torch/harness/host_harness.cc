// The library's test harness on the host driver (memfd + mmap: real memory, real unmaps), linked
// with liblakebed_torch.so exactly as PyTorch loads it. Seven modes, each printing one JSON line:
//
//   stress POLICY SEED THREADS STREAMS OPS [CONF]
//     THREADS client threads allocate and free at random on STREAMS simulated streams. A stream is
//     a worker thread running queued work late, as a GPU runs kernels after the host queued them:
//     each allocation gets a check pattern written by its stream's worker, and a check queued on
//     the same stream before its free; some allocations are also used by a second stream (a check
//     there, named through record_stream). The library's events are the workers' queue markers.
//     A block reused or unmapped before its streams' work ran shows as a changed pattern (or as
//     a fault: the host driver's unmapped memory is PROT_NONE). Reports checks, failures, the
//     allocator's invariants (lakebed_check) and the policy's statistics at the end.
//
//   lock POLICY OPS
//     What the one lock around the Wasm instance costs: a malloc/free pair of a cached 4 KiB block
//     (no driver call), timed from 1 thread and from 4 at once, beside an uncontended std::mutex
//     lock/unlock alone.
//
//   latency POLICY PASSES EVENTS_FILE [CONF]
//     What a malloc and a free cost inside the library on the host driver, single-threaded as
//     PyTorch's main thread calls it: a trace's requests (the replay format below) PASSES times
//     over (blocks still live at the end of a pass are freed), each call timed from outside with
//     the steady clock. Prints the median, p99 and mean of each, for the first pass (which makes
//     the device calls) and the later ones (the steady state, where a training step repeats).
//
//   oom POLICY bound|unbound|other-device|other-device-fraction
//     An out-of-memory through lakebed_malloc, as PyTorch calls it, on a 64 MiB device: with the
//     library bound to the c10 it finds loaded (here the stand-in, c10_standin.h), the exception
//     must be c10::OutOfMemoryError carrying PyTorch's message; unbound, a std::runtime_error.
//     other-device: instead, 1 MiB asked for on device 1 of a library opened for device 0 (refused
//     with a std::runtime_error that says which device to enable); other-device-fraction: a memory
//     fraction set for device 1, refused the same way. Prints what was caught, its message, whether
//     the thrown object was destroyed once, and whether the allocator still serves a request
//     afterwards.
//
//   replay POLICY TOTAL_BYTES CAPACITY_BYTES EVENTS_FILE [CONF]
//     Drives the library with a trace's requests (written by test/torch-host.test.ts: one line per
//     event, "a id size stream", "r id" free requested, "c id" free completed, "o size stream" an
//     out-of-memory request) and prints the device calls it made (kinds and bytes), for comparison
//     with the Node addon's live replay of the same trace.
//
//   trace POLICY SEED OPS [CONF]
//     A seeded single-threaded run of mallocs and frees (an empty_cache every 700 operations), then
//     the library's trace as the snapshot reads it: the kept entries (actions, addresses, sizes),
//     the count the cap dropped (LAKEBED_TORCH_TRACE_MAX_ENTRIES, trace_log.h) and the empty_cache
//     marks. The same seed with and without a cap must keep the same newest entries.
//
//   snapshot POLICY SEED OPS whole|pieces [CONF]
//     Snapshots taken while another thread allocates, as PyTorch's are (the autograd engine allocates
//     from its own thread; a user dumps one mid-step, or from an out-of-memory observer): a worker
//     thread makes OPS seeded mallocs and frees on 2 streams (a quarter of the blocks named through
//     record_stream, so their frees wait pending; an empty_cache every 700 operations) while the main
//     thread takes snapshots and checks each, then one more once the worker stopped. whole: each
//     snapshot is one lakebed_snapshot_take, as python/lakebed_torch's snapshot() reads it. pieces:
//     its segments, its trace and dropped count, and its marks each from a take of their own, as the
//     module read them before (each piece under the lock on its own): what the check catches. A
//     snapshot is consistent (SnapshotInconsistency) when its pieces are one state: the trace ends in
//     the snapshot's segments (the cudaMalloc'd ones, the mapped ranges) and active blocks (address,
//     requested size, allocated or pending free), so that undone entry by entry from them it finds
//     what each entry made, and an uncapped one an empty allocator before its first; each segment's
//     blocks tile it; the marks lie within the trace. The same with a cap that drops entries
//     (LAKEBED_TORCH_TRACE_MAX_ENTRIES), short of the empty start. Prints the snapshots taken, the moments they were of (those taken while the worker
//     ran, each after another operation than the last one), the inconsistent ones and the first
//     one's reason, the final snapshot's, and whether its trace, dropped count and marks are those
//     the trace calls (lakebed_trace_read, ...) read then.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "c10_standin.h"
#include "lakebed_torch.h"
#include "requests.h"

namespace {

// ---- simulated streams -------------------------------------------------------------------------

struct SimStream {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> work;
  bool stop = false;
  std::thread worker;
};

class Streams {
 public:
  explicit Streams(int n, unsigned seed) : streams_(static_cast<size_t>(n)) {
    for (size_t i = 0; i < streams_.size(); i++) {
      SimStream* s = &streams_[i];
      s->worker = std::thread([this, s, i, seed] { Run(s, seed + static_cast<unsigned>(i)); });
    }
  }
  ~Streams() {
    for (auto& s : streams_) {
      {
        std::lock_guard<std::mutex> lock(s.mu);
        s.stop = true;
      }
      s.cv.notify_all();
      s.worker.join();
    }
  }
  // Queues work on stream `id` (ids are 1-based: 0 is PyTorch's default stream, not used here).
  void Enqueue(uint64_t id, std::function<void()> f) {
    SimStream& s = streams_[id - 1];
    {
      std::lock_guard<std::mutex> lock(s.mu);
      s.work.push_back(std::move(f));
    }
    s.cv.notify_one();
  }
  // An event: a marker in the stream's queue, done when the worker reaches it.
  uint64_t Record(uint64_t stream) {
    const uint64_t token = next_.fetch_add(1) + 1;
    {
      std::lock_guard<std::mutex> lock(eventsMu_);
      done_[token] = false;
    }
    Enqueue(stream, [this, token] {
      std::lock_guard<std::mutex> lock(eventsMu_);
      done_[token] = true;
      eventsCv_.notify_all();
    });
    return token;
  }
  bool Query(uint64_t token) {
    std::lock_guard<std::mutex> lock(eventsMu_);
    return done_[token];
  }
  void Wait(uint64_t token) {
    std::unique_lock<std::mutex> lock(eventsMu_);
    eventsCv_.wait(lock, [&] { return done_[token]; });
  }
  void Release(uint64_t token) {
    std::lock_guard<std::mutex> lock(eventsMu_);
    done_.erase(token);
  }
  // Waits until every queued piece of work ran.
  void Drain() {
    for (size_t i = 0; i < streams_.size(); i++) Wait(Record(i + 1));
  }

 private:
  void Run(SimStream* s, unsigned seed) {
    std::mt19937 rng(seed);
    for (;;) {
      std::function<void()> f;
      {
        std::unique_lock<std::mutex> lock(s->mu);
        s->cv.wait(lock, [&] { return s->stop || !s->work.empty(); });
        if (s->work.empty()) return;
        f = std::move(s->work.front());
        s->work.pop_front();
      }
      // work runs late, by a random few microseconds, as kernels do behind the host
      if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 200));
      f();
    }
  }
  std::vector<SimStream> streams_;
  std::atomic<uint64_t> next_{0};
  std::mutex eventsMu_;
  std::condition_variable eventsCv_;
  std::unordered_map<uint64_t, bool> done_;
};

Streams* g_streams = nullptr;
uint64_t Record(void*, uint64_t s) { return g_streams->Record(s); }
int Query(void*, uint64_t t) { return g_streams->Query(t) ? 1 : 0; }
void Wait(void*, uint64_t t) { g_streams->Wait(t); }
void Release(void*, uint64_t t) { g_streams->Release(t); }

// ---- check patterns ----------------------------------------------------------------------------

constexpr uint64_t kStrideBytes = 64 * 1024;  // one word per 64 KiB, plus the last word

uint64_t PatternWord(uint64_t seed, uint64_t offset) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + offset;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

template <class F>
void ForEachWord(uint64_t bytes, F f) {
  if (bytes < 8) return;
  for (uint64_t o = 0; o + 8 <= bytes; o += kStrideBytes) f(o);
  f((bytes - 8) & ~7ull);
}

void Fill(void* p, uint64_t bytes, uint64_t seed) {
  ForEachWord(bytes, [&](uint64_t o) {
    const uint64_t w = PatternWord(seed, o);
    std::memcpy(static_cast<char*>(p) + o, &w, 8);
  });
}

uint64_t Mismatches(const void* p, uint64_t bytes, uint64_t seed) {
  uint64_t bad = 0;
  ForEachWord(bytes, [&](uint64_t o) {
    uint64_t w = 0;
    std::memcpy(&w, static_cast<const char*>(p) + o, 8);
    if (w != PatternWord(seed, o)) bad++;
  });
  return bad;
}

std::string StatsJson() {
  const int n = lakebed_stat_count();
  std::vector<double> v(static_cast<size_t>(n));
  lakebed_stats_read(v.data(), n);
  std::string s = "{";
  for (int i = 0; i < n; i++) {
    const char* name = lakebed_stat_name(i);
    if (std::strstr(name, ".all.") == nullptr && std::strncmp(name, "num_", 4) != 0) continue;
    if (s.size() > 1) s += ",";
    s += "\"" + std::string(name) + "\":" + std::to_string(static_cast<long long>(v[static_cast<size_t>(i)]));
  }
  return s + "}";
}

int Stress(const char* policy, unsigned seed, int threads, int streams, int ops, const char* conf) {
  Streams sim(streams, seed);
  g_streams = &sim;
  // a 1 GiB device: the policies size reservations from it; live memory stays far below
  const uint64_t total = 1ull << 30;
  if (lakebed_open_host(policy, conf, 0, total, 0, Record, Query, Wait, Release, nullptr) != 0) {
    std::printf("{\"error\":\"%s\"}\n", lakebed_last_error());
    return 2;
  }
  std::atomic<uint64_t> checks{0}, failures{0}, mallocs{0}, frees{0}, recorded{0}, ooms{0};
  std::atomic<uint64_t> seeds{1};
  auto client = [&](int t) {
    std::mt19937_64 rng(seed * 7919u + static_cast<unsigned>(t));
    struct Live {
      void* p;
      uint64_t bytes, seed, stream;
    };
    std::vector<Live> live;
    for (int i = 0; i < ops; i++) {
      const bool alloc = live.empty() || (live.size() < 48 && rng() % 100 < 55);
      if (alloc) {
        // sizes from 1 byte to 8 MiB, log-uniform, so both pools and page boundaries are hit
        const uint64_t bytes = 1 + (rng() % ((1ull << (rng() % 24)) + 1));
        const uint64_t stream = 1 + rng() % static_cast<uint64_t>(streams);
        void* p = lakebed_try_malloc(bytes, stream);
        if (!p) {
          ooms++;
          continue;
        }
        mallocs++;
        const uint64_t s = seeds.fetch_add(1);
        sim.Enqueue(stream, [p, bytes, s] { Fill(p, bytes, s); });
        live.push_back({p, bytes, s, stream});
        if (streams > 1 && rng() % 4 == 0) {
          // a second stream reads it too (its own check, queued there) and says so
          const uint64_t other = 1 + (stream + rng() % static_cast<uint64_t>(streams - 1)) % static_cast<uint64_t>(streams);
          lakebed_record_stream(p, reinterpret_cast<void*>(other));
          recorded++;
          // the other stream waits for the fill first (as a kernel waits on an event), then checks
          const uint64_t marker = sim.Record(stream);
          sim.Enqueue(other, [&, p, bytes, s, marker] {
            sim.Wait(marker);
            sim.Release(marker);
            checks++;
            if (Mismatches(p, bytes, s)) failures++;
          });
        }
      } else {
        const size_t k = rng() % live.size();
        const Live b = live[k];
        live[k] = live.back();
        live.pop_back();
        sim.Enqueue(b.stream, [&, b] {
          checks++;
          if (Mismatches(b.p, b.bytes, b.seed)) failures++;
        });
        lakebed_free(b.p, b.bytes, 0, reinterpret_cast<void*>(b.stream));
        frees++;
      }
      if (i % 997 == 0 && rng() % 8 == 0) lakebed_reset();  // torch.cuda.empty_cache from any thread
    }
    for (const Live& b : live) {
      sim.Enqueue(b.stream, [&, b] {
        checks++;
        if (Mismatches(b.p, b.bytes, b.seed)) failures++;
      });
      lakebed_free(b.p, b.bytes, 0, reinterpret_cast<void*>(b.stream));
      frees++;
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < threads; t++) clients.emplace_back(client, t);
  for (auto& c : clients) c.join();
  sim.Drain();
  lakebed_reset();  // processes the last pending frees, then empties the cache
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string broken = lakebed_check();
  uint64_t memory[8] = {0};
  lakebed_memory(memory);
  std::printf(
      "{\"policy\":\"%s\",\"threads\":%d,\"streams\":%d,\"mallocs\":%llu,\"frees\":%llu,\"ooms\":%llu,"
      "\"recordStreams\":%llu,\"checks\":%llu,\"failures\":%llu,\"pendingAtEnd\":%llu,\"check\":\"%s\",\"seconds\":%.3f,"
      "\"fenceWaits\":%llu,\"driverCalls\":%llu,\"stats\":%s}\n",
      policy, threads, streams, (unsigned long long)mallocs, (unsigned long long)frees, (unsigned long long)ooms,
      (unsigned long long)recorded, (unsigned long long)checks, (unsigned long long)failures,
      (unsigned long long)lakebed_pending_frees(), broken.c_str(), seconds, (unsigned long long)memory[4],
      (unsigned long long)memory[6], StatsJson().c_str());
  lakebed_close();
  g_streams = nullptr;
  return 0;
}

// ---- replay ------------------------------------------------------------------------------------

// Trace-driven events complete when the trace says so: free_completed marks the block's event done.
std::unordered_map<uint64_t, bool> g_replayDone;
uint64_t g_replayNext = 0;
std::unordered_map<uint64_t, uint64_t> g_replayTokenOfBlock;
uint64_t ReplayRecord(void*, uint64_t) { return ++g_replayNext; }
int ReplayQuery(void*, uint64_t t) { return g_replayDone[t] ? 1 : 0; }
void ReplayWait(void*, uint64_t t) { g_replayDone[t] = true; }
void ReplayRelease(void*, uint64_t t) { g_replayDone.erase(t); }

// A stream no trace uses: a free that waits for its completion is a block "used" by it.
constexpr uint64_t kWaitingStream = ~0ull;

int Replay(const char* policy, uint64_t total, uint64_t capacity, const char* path, const char* conf) {
  if (lakebed_open_host(policy, conf, capacity, total, 1, ReplayRecord, ReplayQuery, ReplayWait, ReplayRelease, nullptr) != 0) {
    std::printf("{\"error\":\"%s\"}\n", lakebed_last_error());
    return 2;
  }
  std::ifstream in(path);
  std::string line;
  std::unordered_map<uint64_t, void*> ptrs;
  std::vector<std::string> lines;
  while (std::getline(in, line)) lines.push_back(line);
  uint64_t failed = 0;
  for (size_t i = 0; i < lines.size(); i++) {
    std::istringstream ls(lines[i]);
    char op = 0;
    ls >> op;
    if (op == 'a' || op == 'o') {
      uint64_t id = 0, size = 0, stream = 0;
      if (op == 'a') ls >> id;
      ls >> size >> stream;
      void* p = lakebed_try_malloc(size, stream + 1);
      if (!p) failed++;
      else if (op == 'a') ptrs[id] = p;
      else lakebed_free(p, size, 0, nullptr);
    } else if (op == 'r') {
      uint64_t id = 0;
      ls >> id;
      const auto it = ptrs.find(id);
      if (it == ptrs.end()) continue;
      // completed right after its request: a plain free; else it waits for its free_completed
      std::istringstream next(i + 1 < lines.size() ? lines[i + 1] : "");
      char nop = 0;
      uint64_t nid = 0;
      next >> nop >> nid;
      if (!(nop == 'c' && nid == id)) {
        lakebed_record_stream(it->second, reinterpret_cast<void*>(kWaitingStream));
        g_replayTokenOfBlock[id] = g_replayNext + 1;
      }
      lakebed_free(it->second, 0, 0, nullptr);
      ptrs.erase(it);
    } else if (op == 'c') {
      uint64_t id = 0;
      ls >> id;
      const auto t = g_replayTokenOfBlock.find(id);
      if (t != g_replayTokenOfBlock.end()) {
        g_replayDone[t->second] = true;
        g_replayTokenOfBlock.erase(t);
      }
    }
  }
  const uint64_t n = lakebed_call_count();
  std::vector<uint8_t> kinds(n);
  std::vector<uint64_t> bytes(n);
  lakebed_call_read(0, n, kinds.data(), bytes.data());
  std::string out = "{\"policy\":\"" + std::string(policy) + "\",\"failedAllocs\":" + std::to_string(failed) +
                    ",\"check\":\"" + lakebed_check() + "\",\"kinds\":[";
  for (uint64_t i = 0; i < n; i++) out += (i ? "," : "") + std::to_string(kinds[i]);
  out += "],\"bytes\":[";
  for (uint64_t i = 0; i < n; i++) out += (i ? "," : "") + std::to_string(bytes[i]);
  out += "],\"stats\":" + StatsJson() + "}";
  std::puts(out.c_str());
  lakebed_close();
  return 0;
}

struct Percentiles {
  double median = 0, p99 = 0, mean = 0;
};
Percentiles Summarize(std::vector<uint32_t> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  p.median = v[v.size() / 2];
  p.p99 = v[static_cast<size_t>(0.99 * static_cast<double>(v.size() - 1))];
  double sum = 0;
  for (uint32_t x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  return p;
}

int Latency(const char* policy, int passes, const char* path, const char* conf) {
  // a 140 GiB device, as the H200 the traces came from: the policies size reservations from it
  if (lakebed_open_host(policy, conf, 0, 140ull << 30, 0, nullptr, nullptr, nullptr, nullptr, nullptr) != 0) {
    std::printf("{\"error\":\"%s\"}\n", lakebed_last_error());
    return 2;
  }
  using lakebed::torch::harness::Request;
  const std::vector<Request> requests = lakebed::torch::harness::ReadRequests(path);
  using Clock = std::chrono::steady_clock;
  auto ns = [](Clock::time_point a, Clock::time_point b) {
    return static_cast<uint32_t>(std::min<int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count(), UINT32_MAX));
  };
  std::vector<uint32_t> firstMalloc, firstFree, laterMalloc, laterFree;
  std::unordered_map<uint64_t, void*> live;
  uint64_t failed = 0;
  for (int pass = 0; pass < passes; pass++) {
    auto& m = pass == 0 ? firstMalloc : laterMalloc;
    auto& f = pass == 0 ? firstFree : laterFree;
    for (const Request& r : requests) {
      if (r.op == 'a') {
        const auto t0 = Clock::now();
        void* p = lakebed_try_malloc(r.size, r.stream + 1);
        m.push_back(ns(t0, Clock::now()));
        if (p) live[r.id] = p;
        else failed++;
      } else {
        const auto it = live.find(r.id);
        if (it == live.end()) continue;
        const auto t0 = Clock::now();
        lakebed_free(it->second, 0, 0, nullptr);
        f.push_back(ns(t0, Clock::now()));
        live.erase(it);
      }
    }
    for (auto& [id, p] : live) lakebed_free(p, 0, 0, nullptr);
    live.clear();
  }
  auto json = [](const char* name, const std::vector<uint32_t>& v) {
    const Percentiles p = Summarize(v);
    char buf[160];
    std::snprintf(buf, sizeof buf, "\"%s\":{\"n\":%zu,\"median\":%.0f,\"p99\":%.0f,\"mean\":%.1f}", name, v.size(), p.median, p.p99, p.mean);
    return std::string(buf);
  };
  std::printf("{\"policy\":\"%s\",\"passes\":%d,\"failedAllocs\":%llu,%s,%s,%s,%s,\"check\":\"%s\"}\n", policy, passes,
              (unsigned long long)failed, json("firstMalloc", firstMalloc).c_str(), json("firstFree", firstFree).c_str(),
              json("laterMalloc", laterMalloc).c_str(), json("laterFree", laterFree).c_str(), lakebed_check());
  lakebed_close();
  return 0;
}

std::string JsonString(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

int Oom(const char* policy, const std::string& mode) {
  if (lakebed_open_host(policy, "", 64ull << 20, 64ull << 20, 0, nullptr, nullptr, nullptr, nullptr, nullptr) != 0) {
    std::printf("{\"error\":%s}\n", JsonString(lakebed_last_error()).c_str());
    return 2;
  }
  std::string bindError;
  if (mode == "bound" && lakebed_bind_torch_errors() != 0) bindError = lakebed_last_error();
  std::string caught = "nothing", message;
  const uint64_t destroyedBefore = c10_standin_destroyed();
  try {
    if (mode == "other-device")
      lakebed_malloc(1 << 20, 1, reinterpret_cast<void*>(1));
    else if (mode == "other-device-fraction")
      lakebed_set_memory_fraction(0.5, 1);
    else
      lakebed_malloc(1ull << 30, 0, reinterpret_cast<void*>(1));
  } catch (const c10::OutOfMemoryError& e) {  // the first handler torch's HANDLE_TH_ERRORS has for it
    caught = "c10::OutOfMemoryError";
    message = e.what_without_backtrace();
  } catch (const c10::Error& e) {
    caught = "c10::Error";
    message = e.what_without_backtrace();
  } catch (const std::exception& e) {
    caught = "std::exception";
    message = e.what();
  }
  const uint64_t destroyed = c10_standin_destroyed() - destroyedBefore;
  void* after = lakebed_malloc(1 << 20, 0, reinterpret_cast<void*>(1));
  lakebed_free(after, 1 << 20, 0, reinterpret_cast<void*>(1));
  std::printf("{\"bindError\":%s,\"caught\":%s,\"message\":%s,\"standinErrorsDestroyed\":%llu,\"servesAfter\":%s,\"check\":%s}\n",
              JsonString(bindError).c_str(), JsonString(caught).c_str(), JsonString(message).c_str(),
              (unsigned long long)destroyed, after ? "true" : "false", JsonString(lakebed_check()).c_str());
  lakebed_close();
  return 0;
}

int Lock(const char* policy, int ops) {
  if (lakebed_open_host(policy, "", 0, 1ull << 30, 0, nullptr, nullptr, nullptr, nullptr, nullptr) != 0) {
    std::printf("{\"error\":\"%s\"}\n", lakebed_last_error());
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  auto pairs = [&](int threads) {
    const auto t0 = Clock::now();
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; t++)
      ts.emplace_back([&, t] {
        for (int i = 0; i < ops; i++) lakebed_free(lakebed_try_malloc(4096, 1 + static_cast<uint64_t>(t)), 0, 0, nullptr);
      });
    for (auto& t : ts) t.join();
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / (static_cast<double>(ops) * threads);
  };
  pairs(1);  // warm: the blocks are cached from here on
  const double one = pairs(1), four = pairs(4);
  std::mutex m;
  const auto t0 = Clock::now();
  for (int i = 0; i < ops; i++) {
    m.lock();
    m.unlock();
  }
  const double mutexNs = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / ops;
  std::printf("{\"policy\":\"%s\",\"pairNs1Thread\":%.1f,\"pairNs4Threads\":%.1f,\"mutexNs\":%.1f}\n", policy, one, four, mutexNs);
  lakebed_close();
  return 0;
}

// One operation of a seeded run on 2 streams (trace and snapshot modes): a free of a random live
// block, else a malloc of 1 B to 32 MiB, log-uniform (small and large pools, segment allocs and
// maps), with recordStreams a quarter of them also named as used by the other stream; an empty_cache
// every 700th.
void RandomOperation(std::mt19937_64& rng, int i, bool recordStreams, std::vector<void*>* live) {
  if (!live->empty() && (live->size() > 40 || rng() % 100 < 45)) {
    const size_t k = rng() % live->size();
    lakebed_free((*live)[k], 0, 0, nullptr);
    live->erase(live->begin() + static_cast<long>(k));
  } else {
    const uint64_t bytes = uint64_t{1} << (rng() % 25);
    const uint64_t stream = 1 + rng() % 2;
    void* p = lakebed_try_malloc(bytes + rng() % bytes, stream);
    if (p) live->push_back(p);
    if (p && recordStreams && rng() % 4 == 0) lakebed_record_stream(p, reinterpret_cast<void*>(3 - stream));
  }
  if (i % 700 == 699) lakebed_reset();
}

// The trace as the trace calls read it now (lakebed_trace_read, lakebed_trace_dropped,
// lakebed_empty_cache_marks), each under the lock on its own.
struct TraceCalls {
  std::vector<uint8_t> action;
  std::vector<uint64_t> addr, size, stream, marks;
  uint64_t dropped = 0;
};
TraceCalls ReadTraceCalls() {
  TraceCalls t;
  const uint64_t n = lakebed_trace_count();
  t.action.resize(n);
  t.addr.resize(n);
  t.size.resize(n);
  t.stream.resize(n);
  std::vector<int64_t> timeUs(n);
  lakebed_trace_read(0, n, t.action.data(), t.addr.data(), t.size.data(), t.stream.data(), timeUs.data());
  t.marks.resize(lakebed_empty_cache_marks(nullptr, 0));
  lakebed_empty_cache_marks(t.marks.data(), t.marks.size());
  t.dropped = lakebed_trace_dropped();
  return t;
}

int Trace(const char* policy, unsigned seed, int ops, const char* conf) {
  if (lakebed_open_host(policy, conf, 0, 140ull << 30, 0, nullptr, nullptr, nullptr, nullptr, nullptr) != 0) {
    std::printf("{\"error\":%s}\n", JsonString(lakebed_last_error()).c_str());
    return 2;
  }
  std::mt19937_64 rng(seed);
  std::vector<void*> live;
  for (int i = 0; i < ops; i++) RandomOperation(rng, i, false, &live);
  const TraceCalls t = ReadTraceCalls();
  auto list = [](const auto& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); i++) out += (i ? "," : "") + std::to_string(v[i]);
    return out + "]";
  };
  std::printf("{\"count\":%zu,\"dropped\":%llu,\"actions\":%s,\"addrs\":%s,\"sizes\":%s,\"marks\":%s,\"check\":%s}\n",
              t.action.size(), (unsigned long long)t.dropped, list(t.action).c_str(), list(t.addr).c_str(),
              list(t.size).c_str(), list(t.marks).c_str(), JsonString(lakebed_check()).c_str());
  for (void* p : live) lakebed_free(p, 0, 0, nullptr);
  lakebed_close();
  return 0;
}

// ---- snapshot consistency ----------------------------------------------------------------------

struct SnapBlock {
  uint64_t addr, size, requested, state;
};
struct SnapSegment {
  uint64_t addr, size, stream;
  bool expandable;
  std::vector<SnapBlock> blocks;
};
struct SnapEntry {
  uint8_t action;
  uint64_t addr, size, stream;
};
struct SnapView {
  std::vector<SnapSegment> segments;
  std::vector<SnapEntry> trace;
  uint64_t dropped = 0;
  std::vector<uint64_t> marks;
};

void ReadSegments(const lakebed_snapshot* s, SnapView* v) {
  uint64_t out[4];
  for (int i = 0; i < lakebed_snapshot_segment_count(s); i++) {
    lakebed_snapshot_segment(s, i, out);
    SnapSegment seg{out[0], out[1], out[2], out[3] != 0, {}};
    for (int j = 0; j < lakebed_snapshot_block_count(s, i); j++) {
      lakebed_snapshot_block(s, i, j, out);
      seg.blocks.push_back({out[0], out[1], out[2], out[3]});
    }
    v->segments.push_back(std::move(seg));
  }
}

void ReadTrace(const lakebed_snapshot* s, SnapView* v) {
  v->dropped = lakebed_snapshot_trace_dropped(s);
  const uint64_t n = lakebed_snapshot_trace_count(s);
  std::vector<uint8_t> action(n);
  std::vector<uint64_t> addr(n), size(n), stream(n);
  std::vector<int64_t> timeUs(n);
  lakebed_snapshot_trace_read(s, 0, n, action.data(), addr.data(), size.data(), stream.data(), timeUs.data());
  for (uint64_t i = 0; i < n; i++) v->trace.push_back({action[i], addr[i], size[i], stream[i]});
}

void ReadMarks(const lakebed_snapshot* s, SnapView* v) {
  v->marks.resize(lakebed_snapshot_empty_cache_marks(s, nullptr, 0));
  lakebed_snapshot_empty_cache_marks(s, v->marks.data(), v->marks.size());
}

// Busy for us microseconds (a sleep takes 50 or more): a thread's own work between library calls.
void SpinUs(uint64_t us) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
  while (std::chrono::steady_clock::now() < until) {
  }
}

// One snapshot: whole, every piece from one take; else each piece from a take of its own, in the
// order python/lakebed_torch read them before lakebed_snapshot_take (segments, trace, marks), with
// the module's work between its calls (building the dicts: a millisecond and more), here 50 us.
SnapView TakeSnapView(bool whole) {
  SnapView v;
  const std::vector<void (*)(const lakebed_snapshot*, SnapView*)> pieces = {ReadSegments, ReadTrace, ReadMarks};
  lakebed_snapshot* s = lakebed_snapshot_take();
  for (auto read : pieces) {
    if (!whole) {
      lakebed_snapshot_free(s);
      SpinUs(50);
      s = lakebed_snapshot_take();
    }
    read(s, &v);
  }
  lakebed_snapshot_free(s);
  return v;
}

// Disjoint byte ranges, start -> end, adjacent ones joined.
class RangeSet {
 public:
  bool Add(uint64_t a, uint64_t e) {
    auto next = ranges_.lower_bound(a);
    if (next != ranges_.end() && next->first < e) return false;
    if (next != ranges_.begin() && std::prev(next)->second > a) return false;
    if (next != ranges_.begin() && std::prev(next)->second == a) {
      a = std::prev(next)->first;
      ranges_.erase(std::prev(next));
    }
    if (next != ranges_.end() && next->first == e) {
      e = next->second;
      ranges_.erase(next);
    }
    ranges_[a] = e;
    return true;
  }
  bool Remove(uint64_t a, uint64_t e) {
    auto it = ranges_.upper_bound(a);
    if (it == ranges_.begin()) return false;
    --it;
    const uint64_t s = it->first, end = it->second;
    if (end < e) return false;
    ranges_.erase(it);
    if (s < a) ranges_[s] = a;
    if (e < end) ranges_[e] = end;
    return true;
  }
  bool empty() const { return ranges_.empty(); }

 private:
  std::map<uint64_t, uint64_t> ranges_;
};

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// "" when the snapshot's pieces are one state (the harness's snapshot mode says what is checked),
// else the first disagreement: what lakebed verify and the importer need of a library snapshot's
// pieces (api's verify.ts replays the trace and compares where it ends with the segments).
std::string SnapshotInconsistency(const SnapView& v) {
  for (size_t i = 0; i < v.marks.size(); i++) {
    if (v.marks[i] > v.trace.size())
      return "empty_cache mark " + std::to_string(v.marks[i]) + " beyond the trace's " + std::to_string(v.trace.size()) + " entries";
    if (i > 0 && v.marks[i] < v.marks[i - 1]) return "empty_cache marks out of order";
  }
  using Held = std::pair<uint64_t, uint64_t>;
  std::map<uint64_t, Held> mallocs;  // cudaMalloc'd segments: addr -> size, stream
  RangeSet mapped;                   // the expandable segments' bytes
  std::map<uint64_t, Held> active;   // blocks: addr -> requested size, state (0 allocated, 1 pending free)
  for (const SnapSegment& seg : v.segments) {
    if (seg.expandable ? !mapped.Add(seg.addr, seg.addr + seg.size) : !mallocs.emplace(seg.addr, Held{seg.size, seg.stream}).second)
      return "segment " + Hex(seg.addr) + " overlaps another";
    uint64_t at = seg.addr;
    for (const SnapBlock& b : seg.blocks) {
      if (b.addr != at) return "segment " + Hex(seg.addr) + ": a block at " + Hex(b.addr) + ", the last ended at " + Hex(at);
      at += b.size;
      if (b.state < 2) active[b.addr] = {b.requested, b.state};
    }
    if (at != seg.addr + seg.size) return "segment " + Hex(seg.addr) + ": its blocks end at " + Hex(at);
  }
  // Undone from its last entry back, the trace must find at each step the state the entry left (the
  // block it allocated, the range it mapped, ...), starting from the snapshot's; an uncapped trace
  // then ends at an empty allocator. (The importer rebuilds a trace that starts mid-run so, from its
  // segments: packages/traces' initial-state.ts.)
  auto take = [](std::map<uint64_t, Held>& m, uint64_t addr, Held want) {  // the entry's, removed
    const auto it = m.find(addr);
    if (it == m.end() || it->second != want) return false;
    m.erase(it);
    return true;
  };
  for (size_t i = v.trace.size(); i-- > 0;) {
    const SnapEntry& e = v.trace[i];
    bool ok = true;
    switch (e.action) {
      case 1: ok = take(active, e.addr, {e.size, 0}); break;  // alloc: allocated after it
      case 2: ok = take(active, e.addr, {e.size, 1}) && active.emplace(e.addr, Held{e.size, 0}).second; break;
      case 3: ok = active.emplace(e.addr, Held{e.size, 1}).second; break;  // free_completed: pending before it
      case 4: ok = take(mallocs, e.addr, {e.size, e.stream}); break;
      case 5: ok = mallocs.emplace(e.addr, Held{e.size, e.stream}).second; break;
      case 6: ok = mapped.Remove(e.addr, e.addr + e.size); break;
      case 7: ok = mapped.Add(e.addr, e.addr + e.size); break;
      default: break;
    }
    if (!ok)
      return "trace entry " + std::to_string(i) + " of " + std::to_string(v.trace.size()) + " (action " + std::to_string(e.action) +
             " at " + Hex(e.addr) + ", " + std::to_string(e.size) + " B) does not lead to the snapshot's segments and blocks";
  }
  if (v.dropped == 0 && !(active.empty() && mallocs.empty() && mapped.empty()))
    return "the trace, undone, leaves " + std::to_string(active.size()) + " active blocks, " + std::to_string(mallocs.size()) +
           " cudaMalloc'd segments and mapped ranges " + (mapped.empty() ? "none" : "some") + " before its first entry";
  return "";
}

// Events that complete at their third query (or a wait): some frees stay pending a while.
std::mutex g_snapEventsMu;
std::unordered_map<uint64_t, int> g_snapEventsLeft;
uint64_t g_snapEventsNext = 0;
uint64_t SnapRecord(void*, uint64_t) {
  std::lock_guard<std::mutex> lock(g_snapEventsMu);
  g_snapEventsLeft[++g_snapEventsNext] = 3;
  return g_snapEventsNext;
}
int SnapQuery(void*, uint64_t t) {
  std::lock_guard<std::mutex> lock(g_snapEventsMu);
  int& left = g_snapEventsLeft[t];
  if (left > 0) left--;
  return left == 0 ? 1 : 0;
}
void SnapWait(void*, uint64_t t) {
  std::lock_guard<std::mutex> lock(g_snapEventsMu);
  g_snapEventsLeft[t] = 0;
}
void SnapRelease(void*, uint64_t t) {
  std::lock_guard<std::mutex> lock(g_snapEventsMu);
  g_snapEventsLeft.erase(t);
}

int SnapshotRace(const char* policy, unsigned seed, int ops, const std::string& mode, const char* conf) {
  if (lakebed_open_host(policy, conf, 0, 140ull << 30, 0, SnapRecord, SnapQuery, SnapWait, SnapRelease, nullptr) != 0) {
    std::printf("{\"error\":%s}\n", JsonString(lakebed_last_error()).c_str());
    return 2;
  }
  std::atomic<bool> done{false};
  std::vector<void*> live;
  std::thread worker([&] {
    std::mt19937_64 rng(seed);
    for (int i = 0; i < ops; i++) {
      RandomOperation(rng, i, true, &live);
      SpinUs(rng() % 16);  // the step's work between its allocations
    }
    done = true;
  });
  const bool whole = mode == "whole";
  uint64_t snapshots = 0, moments = 0, torn = 0;
  uint64_t lastAppended = 0;
  std::string firstTorn;
  while (!done) {
    const SnapView v = TakeSnapView(whole);
    const bool running = !done;
    const std::string why = SnapshotInconsistency(v);
    snapshots++;
    // a moment by the entries ever appended, kept and dropped: a capped trace's kept count stops
    // at the cap once it fills, and would count every later snapshot as the same moment
    const uint64_t appended = v.dropped + v.trace.size();
    if (running && appended != lastAppended) moments++;
    lastAppended = appended;
    if (!why.empty() && torn++ == 0) firstTorn = why;
    SpinUs(20);  // not back to the lock at once: a thread that does, starves the worker of it
  }
  worker.join();
  const SnapView last = TakeSnapView(whole);
  // the copy (whole runs of a ring's slots) against the trace calls' reads, entry by entry (at rest)
  const TraceCalls t = ReadTraceCalls();
  bool sameAsTraceCalls = t.action.size() == last.trace.size() && t.marks == last.marks && t.dropped == last.dropped;
  for (size_t i = 0; sameAsTraceCalls && i < t.action.size(); i++) {
    const SnapEntry& e = last.trace[i];
    sameAsTraceCalls = e.action == t.action[i] && e.addr == t.addr[i] && e.size == t.size[i] && e.stream == t.stream[i];
  }
  std::printf("{\"policy\":\"%s\",\"mode\":\"%s\",\"snapshots\":%llu,\"moments\":%llu,\"torn\":%llu,\"firstTorn\":%s,"
              "\"traceAtEnd\":%zu,\"dropped\":%llu,\"marksAtEnd\":%zu,\"final\":%s,\"sameAsTraceCalls\":%s,\"check\":%s}\n",
              policy, mode.c_str(), (unsigned long long)snapshots, (unsigned long long)moments, (unsigned long long)torn,
              JsonString(firstTorn).c_str(), last.trace.size(), (unsigned long long)last.dropped, last.marks.size(),
              JsonString(SnapshotInconsistency(last)).c_str(), sameAsTraceCalls ? "true" : "false", JsonString(lakebed_check()).c_str());
  for (void* p : live) lakebed_free(p, 0, 0, nullptr);
  lakebed_close();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "stress" && argc >= 7)
    return Stress(argv[2], static_cast<unsigned>(std::atoi(argv[3])), std::atoi(argv[4]), std::atoi(argv[5]),
                  std::atoi(argv[6]), argc > 7 ? argv[7] : "");
  if (mode == "lock" && argc >= 4) return Lock(argv[2], std::atoi(argv[3]));
  if (mode == "oom" && argc >= 4) return Oom(argv[2], argv[3]);
  if (mode == "latency" && argc >= 5) return Latency(argv[2], std::atoi(argv[3]), argv[4], argc > 5 ? argv[5] : "");
  if (mode == "replay" && argc >= 6)
    return Replay(argv[2], std::strtoull(argv[3], nullptr, 10), std::strtoull(argv[4], nullptr, 10), argv[5],
                  argc > 6 ? argv[6] : "");
  if (mode == "trace" && argc >= 5)
    return Trace(argv[2], static_cast<unsigned>(std::atoi(argv[3])), std::atoi(argv[4]), argc > 5 ? argv[5] : "");
  if (mode == "snapshot" && argc >= 6)
    return SnapshotRace(argv[2], static_cast<unsigned>(std::atoi(argv[3])), std::atoi(argv[4]), argv[5], argc > 6 ? argv[6] : "");
  std::fprintf(stderr,
               "usage: lakebed-torch-harness stress POLICY SEED THREADS STREAMS OPS [CONF]\n"
               "       lakebed-torch-harness lock POLICY OPS\n"
               "       lakebed-torch-harness latency POLICY PASSES EVENTS_FILE [CONF]\n"
               "       lakebed-torch-harness oom POLICY bound|unbound|other-device|other-device-fraction\n"
               "       lakebed-torch-harness replay POLICY TOTAL_BYTES CAPACITY_BYTES EVENTS_FILE [CONF]\n"
               "       lakebed-torch-harness trace POLICY SEED OPS [CONF]\n"
               "       lakebed-torch-harness snapshot POLICY SEED OPS whole|pieces [CONF]\n");
  return 64;
}
