// The tables of everything one open driver made and has not yet given back: physical handles,
// address reservations, mappings and plain mallocs. DriverCore changes them only after the driver
// call succeeded, so a failed call leaves them exactly as they were; teardown walks them to release
// everything; leakReport prints them.
//
// Invariants (IsValid checks all of them; tests call it after every step):
//   INV-NAT-1  a handle record lives while the handle is unreleased OR still mapped: CUDA frees the
//              physical memory of a released handle only when its last mapping goes (cuMemRelease
//              docs), and a closed memfd stays alive while mmap'd, so both drivers agree.
//   INV-NAT-2  handle.mappings == the number of mapping records naming that handle.
//   INV-NAT-3  every mapping lies inside one reservation; reservation.mappings counts them.
//   INV-NAT-4  mappings never overlap one another.
//   INV-NAT-5  the running totals (live counts, byte sums) equal what a walk of the tables gives.
//   INV-NAT-6  offset + bytes of a mapping fit inside its handle (offset is 0 today: driver_core).
//
//   reservation [va ............................................ va+bytes)
//                 | mapping A (handle 3) | mapping B (handle 7) |  (unmapped: PROT_NONE / no PTEs)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace lakebed {

struct HandleRecord {
  uint64_t native;    // CUmemGenericAllocationHandle or memfd
  uint64_t bytes;
  uint32_t mappings;  // INV-NAT-2
  bool released;      // memRelease was called; record stays while mappings > 0 (INV-NAT-1)
  uint64_t seq;       // creation order across all tables; teardown goes newest first
  // Made exportable (memCreateShareable) or imported from another process's descriptor: only
  // these may be exported (CUDA fixes the handle type at cuMemCreate; the host refuses alike).
  bool shareable = false;
};

struct ReservationRecord {
  uint64_t bytes;
  uint64_t alignmentBytes;
  uint32_t mappings;  // INV-NAT-3
  uint64_t seq;
};

struct MappingRecord {
  uint64_t bytes;
  uint32_t handle;
  uint64_t offsetBytes;
  uint64_t reservationVa;
  bool access;  // setAccess was applied (the mapping is readable and writable)
  uint64_t seq;
  // The records of `handle` and `reservationVa`, which count this mapping. Neither can go while
  // the mapping lives (INV-NAT-1, INV-NAT-3), and std::map keeps an element where it is, so an
  // unmap reaches them without looking them up.
  std::map<uint32_t, HandleRecord>::iterator handleRecord;
  std::map<uint64_t, ReservationRecord>::iterator reservationRecord;
  // access was set read-only (a shared chunk): reads are allowed, every write is refused here
  // before the driver is asked, as the driver itself would refuse it.
  bool readOnly = false;
};

struct MallocRecord {
  uint64_t bytes;
  uint64_t seq;
};

struct LiveTotals {
  uint64_t liveHandles = 0;  // unreleased handles
  uint64_t handleBytes = 0;  // bytes of unreleased handles
  uint64_t physicalBytes = 0;  // handle records still holding memory (INV-NAT-1) + mallocs
  uint64_t liveReservations = 0;
  uint64_t reservedBytes = 0;
  uint64_t liveMappings = 0;
  uint64_t mappedBytes = 0;
  uint64_t liveMallocs = 0;
  uint64_t mallocBytes = 0;
};

class LiveTables {
 public:
  std::map<uint32_t, HandleRecord> handles;
  std::map<uint64_t, ReservationRecord> reservations;  // keyed by base va
  std::map<uint64_t, MappingRecord> mappings;          // keyed by va
  std::map<uint64_t, MallocRecord> mallocs;            // keyed by va
  LiveTotals totals;

  // A device call looks each record up once and hands the iterator on to the mutation (a lookup
  // in a table of 10,000 mappings is a dozen cache misses; a replay makes tens of thousands).
  using HandleIt = std::map<uint32_t, HandleRecord>::iterator;
  using ReservationIt = std::map<uint64_t, ReservationRecord>::iterator;
  using MappingIt = std::map<uint64_t, MappingRecord>::iterator;
  using MallocIt = std::map<uint64_t, MallocRecord>::iterator;

  bool empty() const {
    return handles.empty() && reservations.empty() && mappings.empty() && mallocs.empty();
  }

  // ---- queries ------------------------------------------------------------------------------

  // The reservation that holds all of [va, va+bytes), or reservations.end().
  ReservationIt ReservationHolding(uint64_t va, uint64_t bytes) {
    return Holding(reservations, va, bytes);
  }

  // Whether [va, va+bytes) overlaps a mapping; `next` gets the first mapping at or after va,
  // which is where a mapping of that range goes (AddMapping's hint).
  bool OverlapsMapping(uint64_t va, uint64_t bytes, MappingIt* next) {
    auto it = mappings.lower_bound(va);
    *next = it;
    if (it != mappings.end() && it->first < va + bytes) return true;
    if (it == mappings.begin()) return false;
    --it;
    return it->first + it->second.bytes > va;
  }

  // True when [va, va+bytes) is exactly covered by whole, back-to-back mappings (what cuMemUnmap
  // and cuMemSetAccess require); fills `tiles` with them in address order.
  bool TiledByMappings(uint64_t va, uint64_t bytes, std::vector<MappingIt>* tiles,
                       std::string* why) {
    tiles->clear();
    uint64_t at = va;
    const uint64_t end = va + bytes;
    auto it = mappings.find(va);
    if (it == mappings.end()) {
      *why = "no mapping starts at this address";
      return false;
    }
    while (at < end) {
      if (it == mappings.end() || it->first != at) {
        *why = "the range has an unmapped gap";
        return false;
      }
      if (at + it->second.bytes > end) {
        *why = "the range ends inside a mapping (a mapping is unmapped whole)";
        return false;
      }
      tiles->push_back(it);
      at += it->second.bytes;
      ++it;
    }
    return true;
  }

  // True when [va, va+bytes) may be read and written: inside one malloc, or tiled by mappings
  // that all have access set. This is what keeps the host driver from faulting on a bad copy.
  // `write`: the range will be written, so a read-only mapping in it refuses.
  bool Accessible(uint64_t va, uint64_t bytes, std::string* why, bool write = false) const {
    auto m = mallocs.upper_bound(va);
    if (m != mallocs.begin()) {
      --m;
      if (va >= m->first && va - m->first + bytes <= m->second.bytes) return true;
    }
    auto it = mappings.upper_bound(va);
    if (it == mappings.begin()) {
      *why = "the range is neither inside a malloc nor mapped";
      return false;
    }
    --it;
    uint64_t at = va;
    const uint64_t end = va + bytes;
    while (at < end) {
      if (it == mappings.end() || it->first > at || it->first + it->second.bytes <= at) {
        *why = "part of the range is not mapped";
        return false;
      }
      if (!it->second.access) {
        *why = "part of the range is mapped without access (call setAccess first)";
        return false;
      }
      if (write && it->second.readOnly) {
        *why = "part of the range is mapped read-only (a shared chunk): writes are refused";
        return false;
      }
      at = it->first + it->second.bytes;
      ++it;
    }
    return true;
  }

  // ---- mutations, called only after the driver call succeeded ---------------------------------

  uint32_t AddHandle(uint64_t native, uint64_t bytes) {
    const uint32_t id = nextHandleId_++;  // the largest id yet: it goes at the end
    handles.emplace_hint(handles.end(), id, HandleRecord{native, bytes, 0, false, nextSeq_++});
    totals.liveHandles++;
    totals.handleBytes += bytes;
    totals.physicalBytes += bytes;
    return id;
  }

  void ReleaseHandle(uint32_t id) { ReleaseHandle(handles.find(id)); }
  void ReleaseHandle(HandleIt it) {
    it->second.released = true;
    totals.liveHandles--;
    totals.handleBytes -= it->second.bytes;
    DropHandleIfDone(it);
  }

  void AddReservation(uint64_t va, uint64_t bytes, uint64_t alignmentBytes) {
    reservations[va] = ReservationRecord{bytes, alignmentBytes, 0, nextSeq_++};
    totals.liveReservations++;
    totals.reservedBytes += bytes;
  }

  void RemoveReservation(uint64_t va) { RemoveReservation(reservations.find(va)); }
  void RemoveReservation(ReservationIt it) {
    totals.liveReservations--;
    totals.reservedBytes -= it->second.bytes;
    reservations.erase(it);
  }

  // `next`: OverlapsMapping's; h and r: the handle mapped and the reservation holding the range.
  void AddMapping(MappingIt next, uint64_t va, uint64_t bytes, HandleIt h, uint64_t offsetBytes,
                  ReservationIt r) {
    mappings.emplace_hint(next, va,
                          MappingRecord{bytes, h->first, offsetBytes, r->first, false, nextSeq_++,
                                        h, r});
    h->second.mappings++;
    r->second.mappings++;
    totals.liveMappings++;
    totals.mappedBytes += bytes;
  }

  void RemoveMapping(uint64_t va) { RemoveMapping(mappings.find(va)); }
  void RemoveMapping(MappingIt it) {
    const MappingRecord m = it->second;
    mappings.erase(it);
    totals.liveMappings--;
    totals.mappedBytes -= m.bytes;
    m.reservationRecord->second.mappings--;
    m.handleRecord->second.mappings--;
    DropHandleIfDone(m.handleRecord);
  }

  void AddMalloc(uint64_t va, uint64_t bytes) {
    mallocs[va] = MallocRecord{bytes, nextSeq_++};
    totals.liveMallocs++;
    totals.mallocBytes += bytes;
    totals.physicalBytes += bytes;
  }

  void RemoveMalloc(uint64_t va) { RemoveMalloc(mallocs.find(va)); }
  void RemoveMalloc(MallocIt it) {
    totals.liveMallocs--;
    totals.mallocBytes -= it->second.bytes;
    totals.physicalBytes -= it->second.bytes;
    mallocs.erase(it);
  }

  // Walks every table and checks INV-NAT-1..6; `why` names the first broken invariant.
  bool IsValid(std::string* why) const {
    LiveTotals t;
    std::map<uint32_t, uint32_t> mapsPerHandle;
    std::map<uint64_t, uint32_t> mapsPerReservation;
    uint64_t prevEnd = 0;
    for (const auto& [va, m] : mappings) {
      if (va < prevEnd) return Fail(why, "INV-NAT-4: mappings overlap");
      prevEnd = va + m.bytes;
      auto r = Holding(reservations, va, m.bytes);
      if (r == reservations.end() || r->first != m.reservationVa)
        return Fail(why, "INV-NAT-3: a mapping lies outside its reservation");
      if (r != m.reservationRecord)
        return Fail(why, "INV-NAT-3: a mapping points at another reservation's record");
      auto h = handles.find(m.handle);
      if (h == handles.end()) return Fail(why, "INV-NAT-1: a mapping names a dropped handle");
      if (h != m.handleRecord)
        return Fail(why, "INV-NAT-2: a mapping points at another handle's record");
      if (m.offsetBytes + m.bytes > h->second.bytes)
        return Fail(why, "INV-NAT-6: a mapping runs past the end of its handle");
      mapsPerHandle[m.handle]++;
      mapsPerReservation[m.reservationVa]++;
      t.liveMappings++;
      t.mappedBytes += m.bytes;
    }
    for (const auto& [id, h] : handles) {
      if (h.mappings != mapsPerHandle[id]) return Fail(why, "INV-NAT-2: handle mapping count is off");
      if (h.released && h.mappings == 0) return Fail(why, "INV-NAT-1: a done handle was kept");
      if (!h.released) {
        t.liveHandles++;
        t.handleBytes += h.bytes;
      }
      t.physicalBytes += h.bytes;
    }
    for (const auto& [va, r] : reservations) {
      if (r.mappings != mapsPerReservation[va])
        return Fail(why, "INV-NAT-3: reservation mapping count is off");
      t.liveReservations++;
      t.reservedBytes += r.bytes;
    }
    for (const auto& [va, m] : mallocs) {
      t.liveMallocs++;
      t.mallocBytes += m.bytes;
      t.physicalBytes += m.bytes;
    }
    if (t.liveHandles != totals.liveHandles || t.handleBytes != totals.handleBytes ||
        t.physicalBytes != totals.physicalBytes || t.liveReservations != totals.liveReservations ||
        t.reservedBytes != totals.reservedBytes || t.liveMappings != totals.liveMappings ||
        t.mappedBytes != totals.mappedBytes || t.liveMallocs != totals.liveMallocs ||
        t.mallocBytes != totals.mallocBytes)
      return Fail(why, "INV-NAT-5: running totals differ from the tables");
    return true;
  }

 private:
  uint32_t nextHandleId_ = 1;  // ids are never reused within one driver: a stale id is an error
  uint64_t nextSeq_ = 1;

  void DropHandleIfDone(std::map<uint32_t, HandleRecord>::iterator it) {
    if (it->second.released && it->second.mappings == 0) {
      totals.physicalBytes -= it->second.bytes;
      handles.erase(it);
    }
  }

  // The entry of `table` (keyed by start address) whose range holds [va, va+bytes), or end().
  template <class Table>
  static auto Holding(Table& table, uint64_t va, uint64_t bytes) -> decltype(table.end()) {
    auto it = table.upper_bound(va);
    if (it == table.begin()) return table.end();
    --it;
    return va - it->first + bytes > it->second.bytes ? table.end() : it;
  }

  static bool Fail(std::string* why, const char* what) {
    *why = what;
    return false;
  }
};

}  // namespace lakebed
