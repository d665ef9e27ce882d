#include "alloc_conf.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <set>
#include <vector>

namespace lakebed::torch {

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

// Settings PyTorch accepts that change nothing an emulation can see (conf.ts' IGNORED_* sets).
const std::set<std::string> kIgnoredBooleanKeys = {
    "release_lock_on_cudamalloc", "pinned_use_cuda_host_register", "pinned_use_background_threads",
    "graph_capture_record_stream_reuse"};
const std::set<std::string> kIgnoredNumberKeys = {"pinned_num_register_threads",
                                                  "pinned_reserve_segment_size_mb"};

std::vector<std::string> Tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  std::string word;
  for (char ch : text) {
    if (ch == ',' || ch == ':' || ch == '[' || ch == ']') {
      if (!word.empty()) tokens.push_back(word);
      word.clear();
      tokens.push_back(std::string(1, ch));
    } else if (!std::isspace(static_cast<unsigned char>(ch))) {
      word += ch;
    }
  }
  if (!word.empty()) tokens.push_back(word);
  return tokens;
}

bool IsWholeNumber(const std::string& t) {
  if (t.empty()) return false;
  for (char c : t)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

bool IsPowerOfTwo(long long v) { return v > 0 && (v & (v - 1)) == 0; }

// Throws nothing: each reader returns false after writing the error, and the parser stops.
class Parser {
 public:
  Parser(const std::string& text, AllocConf* out, std::string* error)
      : text_(text), tokens_(Tokenize(text)), conf_(out), error_(error) {}

  bool Run() {
    while (i_ < tokens_.size()) {
      const std::string key = tokens_[i_++];
      if (key == ",") continue;
      if (!Expect(":") || !Setting(key)) return false;
      if (i_ < tokens_.size() && !Expect(",")) return false;
    }
    return true;
  }

 private:
  bool Fail(const std::string& message) {
    *error_ = "allocator settings \"" + text_ + "\": " + message;
    return false;
  }
  const std::string* Next() { return i_ < tokens_.size() ? &tokens_[i_++] : (i_++, nullptr); }
  bool Expect(const std::string& token) {
    if (i_ >= tokens_.size() || tokens_[i_] != token)
      return Fail("expected '" + token + "' " +
                  (i_ >= tokens_.size() ? std::string("at the end") : "before '" + tokens_[i_] + "'"));
    i_++;
    return true;
  }
  bool Integer(const std::string& key, long long* v) {
    const std::string* t = Next();
    if (!t || !IsWholeNumber(*t)) return Fail(key + " needs a whole number, got '" + (t ? *t : "") + "'");
    *v = std::atoll(t->c_str());
    return true;
  }
  bool Real(const std::string& key, double* v) {
    const std::string* t = Next();
    char* end = nullptr;
    if (t) *v = std::strtod(t->c_str(), &end);
    if (!t || t->empty() || *end != '\0' || !std::isfinite(*v))
      return Fail(key + " needs a number, got '" + (t ? *t : "") + "'");
    return true;
  }
  bool Boolean(const std::string& key, bool* v) {
    const std::string* t = Next();
    if (!t || (*t != "True" && *t != "False"))
      return Fail(key + " needs True or False, got '" + (t ? *t : "") + "'");
    *v = *t == "True";
    return true;
  }

  bool Setting(const std::string& key) {
    long long n = 0;
    double x = 0;
    bool b = false;
    AllocConf& c = *conf_;
    if (key == "max_split_size_mb") {
      if (!Integer(key, &n)) return false;
      if (n < 20) return Fail("max_split_size_mb must be at least 20, got " + std::to_string(n));
      c.maxSplitSizeBytes = n * kMiB;
    } else if (key == "max_non_split_rounding_mb") {
      if (!Integer(key, &n)) return false;
      if (n < 20) return Fail("max_non_split_rounding_mb must be at least 20, got " + std::to_string(n));
      c.maxNonSplitRoundingBytes = n * kMiB;
    } else if (key == "large_segment_size_mb") {
      if (!Integer(key, &n)) return false;
      if (n <= 10) return Fail("large_segment_size_mb must be more than 10, got " + std::to_string(n));
      c.largeSegmentSizeBytes = n * kMiB;
    } else if (key == "garbage_collection_threshold") {
      if (!Real(key, &x)) return false;
      if (!(x > 0 && x < 1)) return Fail("garbage_collection_threshold must be between 0 and 1 (exclusive)");
      c.garbageCollectionThreshold = x;
    } else if (key == "per_process_memory_fraction") {
      if (!Real(key, &x)) return false;
      if (!(x > 0 && x <= 1)) return Fail("per_process_memory_fraction must be in (0, 1]");
      c.perProcessMemoryFraction = x;
    } else if (key == "expandable_segments") {
      if (!Boolean(key, &b)) return false;
      c.expandableSegments = b;
    } else if (key == "roundup_power2_divisions") {
      return Divisions();
    } else if (key == "backend") {
      const std::string* t = Next();
      if (t && *t == "cudaMallocAsync")
        return Fail("backend:cudaMallocAsync is CUDA's own allocator, which lakebed does not emulate");
      if (!t || *t != "native") return Fail("backend must be native or cudaMallocAsync, got '" + (t ? *t : "") + "'");
    } else if (key == "vmmDefragment") {
      if (!Integer(key, &n)) return false;
      c.vmmDefragment = static_cast<int>(n);
    } else if (key == "fragLimit") {
      if (!Integer(key, &n)) return false;
      c.fragLimitBytes = static_cast<double>(n);
    } else if (key == "defragLevel") {
      if (!Integer(key, &n)) return false;
      c.defragLevel = static_cast<int>(n);
    } else if (key == "reuseLimit") {
      if (!Real(key, &x)) return false;
      if (!(x >= 1)) return Fail("reuseLimit must be at least 1");
      c.reuseLimit = x;
    } else if (key == "autoGC") {
      if (!Real(key, &x)) return false;
      if (!(x >= 0)) return Fail("autoGC must be a number of GiB (0 or more)");
      c.autoGCGiB = x;
    } else if (key == "reAlloc") {
      if (!Integer(key, &n)) return false;
      c.reAlloc = static_cast<int>(n);
    } else if (key == "lakebed_slack_permille") {
      if (!Integer(key, &n)) return false;
      c.lakebedSlackPermille = static_cast<int>(n);
    } else if (key == "lakebed_fit_window") {
      if (!Integer(key, &n)) return false;
      c.lakebedFitWindow = static_cast<int>(n < 1 ? 1 : n);
    } else if (key == "lakebed_large_page_mb") {
      if (!Integer(key, &n)) return false;
      if (n < 2 || n % 2 != 0 || n > 1024)
        return Fail("lakebed_large_page_mb must be an even number of MiB from 2 to 1024, got " + std::to_string(n));
      c.lakebedLargePageMiB = static_cast<int>(n);
    } else if (kIgnoredBooleanKeys.count(key)) {
      return Boolean(key, &b);
    } else if (kIgnoredNumberKeys.count(key)) {
      return Integer(key, &n);
    } else {
      return Fail("unknown setting '" + key + "'");
    }
    return true;
  }

  bool Division(const std::string* t, bool allowZero, int* v) {
    if (!t || !IsWholeNumber(*t))
      return Fail("roundup_power2_divisions needs whole numbers, got '" + (t ? *t : "") + "'");
    const long long d = std::atoll(t->c_str());
    if (!(IsPowerOfTwo(d) || (allowZero && d == 0)))
      return Fail(std::string("roundup_power2_divisions: divisions must be a power of 2") +
                  (allowZero ? " or 0" : "") + ", got " + std::to_string(d));
    *v = static_cast<int>(d);
    return true;
  }

  // N, or [MB:N, ..., >:N]
  bool Divisions() {
    auto& out = conf_->roundupDivisions;
    int v = 0;
    if (i_ >= tokens_.size() || tokens_[i_] != "[") {
      if (!Division(Next(), false, &v)) return false;
      out.fill(v);
      return true;
    }
    i_++;
    bool first = true;
    int lastIndex = 0;
    while (i_ >= tokens_.size() || tokens_[i_] != "]") {
      if (i_ >= tokens_.size()) return Fail("roundup_power2_divisions: missing ']'");
      const std::string key = tokens_[i_++];
      const std::string* colon = Next();
      if (!colon || *colon != ":") return Fail("roundup_power2_divisions: expected ':' after '" + key + "'");
      if (!Division(Next(), true, &v)) return false;
      if (key == ">") {
        for (int k = lastIndex + 1; k < kRoundupBuckets; k++) out[k] = v;
      } else {
        if (!IsWholeNumber(key) || !IsPowerOfTwo(std::atoll(key.c_str())))
          return Fail("roundup_power2_divisions: interval starts must be powers of 2 (MB), got '" + key + "'");
        const int index = std::min(static_cast<int>(std::log2(static_cast<double>(std::atoll(key.c_str())))),
                                   kRoundupBuckets - 1);
        if (first) {
          for (int k = 0; k < index; k++) out[k] = v;
          first = false;
        }
        out[index] = v;
        lastIndex = index;
      }
      if (i_ < tokens_.size() && tokens_[i_] == ",") i_++;
      else if (i_ >= tokens_.size()) return Fail("roundup_power2_divisions: missing ']'");
      else if (tokens_[i_] != "]") return Fail("roundup_power2_divisions: expected ',' or ']' before '" + tokens_[i_] + "'");
    }
    i_++;
    return true;
  }

  const std::string& text_;
  std::vector<std::string> tokens_;
  size_t i_ = 0;
  AllocConf* conf_;
  std::string* error_;
};

}  // namespace

bool ParseAllocConf(const std::string& text, AllocConf* out, std::string* error) {
  *out = AllocConf();
  return Parser(text, out, error).Run();
}

}  // namespace lakebed::torch
