// The entries of the allocator's frees not yet fenced (torch_allocator.h's Freed), by driver
// address and stream id; the keys are also kept in address order there (a std::set, which the
// fences before unmaps search by range). A free updates its own entry, which a training step's
// frees mostly already have (the last step freed the same addresses on the same stream), with one
// probe here: a walk down a std::map holding the entries had cost a quarter of a free's time on
// the host driver.
//
// Open addressing with linear probing and backward-shift deletion (no tombstones): at most half
// full, so a probe sequence stays short; grows by doubling. A value's address holds until the next
// Insert or Erase (either may move entries).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lakebed::torch {

template <class Value>
class FreedIndex {
 public:
  explicit FreedIndex(size_t capacity = 1 << 14) { Reset(capacity); }

  // The value of (addr, stream), or nullptr.
  Value* Find(uint64_t addr, int stream) {
    for (size_t i = Home(addr, stream);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (!s.used) return nullptr;
      if (s.addr == addr && s.stream == stream) return &s.value;
    }
  }
  // (addr, stream) must not be in the index; its value, until the next Insert or Erase.
  Value* Insert(uint64_t addr, int stream, Value value) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    size_t i = Home(addr, stream);
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = Slot{addr, stream, true, value};
    size_++;
    return &slots_[i].value;
  }
  // Removes (addr, stream) if there.
  void Erase(uint64_t addr, int stream) {
    size_t i = Home(addr, stream);
    for (;; i = (i + 1) & mask_) {
      if (!slots_[i].used) return;
      if (slots_[i].addr == addr && slots_[i].stream == stream) break;
    }
    // shift back every later entry of the run whose home does not lie in (i, j]: a lookup of it
    // would otherwise stop at the hole
    for (size_t j = (i + 1) & mask_; slots_[j].used; j = (j + 1) & mask_) {
      const size_t home = Home(slots_[j].addr, slots_[j].stream);
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i].used = false;
    size_--;
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t addr = 0;
    int stream = 0;
    bool used = false;
    Value value{};
  };
  size_t Home(uint64_t addr, int stream) const {
    // Fibonacci hashing: the product's top bits (addresses are multiples of 512 or more)
    const uint64_t key = addr ^ (static_cast<uint64_t>(static_cast<uint32_t>(stream)) << 52);
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void Reset(size_t capacity) {
    size_t bits = 4;
    while ((size_t{1} << bits) < capacity) bits++;
    slots_.assign(size_t{1} << bits, Slot{});
    mask_ = slots_.size() - 1;
    shift_ = 64 - static_cast<int>(bits);
    size_ = 0;
  }
  void Grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    Reset(old.size() * 2);
    for (const Slot& s : old)
      if (s.used) Insert(s.addr, s.stream, s.value);
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace lakebed::torch
