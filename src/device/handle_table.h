// Live handles, each with its ping page and (after the first ping) its context
// (docs/device.md#handles, #ping-page). A handle is live from GEN_HANDLE to DESTROY_HANDLE.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "device/context.h"

namespace gf::device {

struct HandleEntry {
    std::optional<uint64_t> ping_info_gpa;  // set by TELL_PING_INFO_ADDR
    std::unique_ptr<Context> context;       // set by the first successful ping
};

class HandleTable {
  public:
    using Entries = std::unordered_map<uint32_t, HandleEntry>;

    // `first` is the first handle tried; tests start near the wrap point.
    explicit HandleTable(uint32_t first = 1) : next_(valid(first) ? first : 1) {}

    // The next handle in counter order that is not live, skipping 0 and 0xFFFFFFFF; ENOSPC
    // only if every valid handle is live.
    Result<uint32_t> generate();
    // The live entry for handle, or nullptr.
    HandleEntry* find(uint32_t handle);
    const HandleEntry* find(uint32_t handle) const;
    // Ends a handle and hands over its entry, whose context the caller ends (context.h);
    // nullopt if it was not live.
    std::optional<HandleEntry> remove(uint32_t handle);
    // Ends every handle and hands over the entries, in the order they left; the counter
    // restarts at 1.
    std::vector<HandleEntry> remove_all();

    // Moves the counter, as 2^32 GEN_HANDLEs would; for tests of the wrap.
    void restart_counter_at(uint32_t next) { next_ = valid(next) ? next : 1; }

    size_t size() const { return entries_.size(); }
    // Every live handle, in no particular order.
    const Entries& entries() const { return entries_; }

  private:
    static bool valid(uint32_t handle) { return handle != 0 && handle != 0xFFFFFFFF; }

    uint32_t next_;
    Entries entries_;
};

}  // namespace gf::device
