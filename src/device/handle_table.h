// Live handles, each with its ping page and (after the first ping) its context
// (spec/device.md §5.1, §5.2). A handle is live from GEN_HANDLE to DESTROY_HANDLE.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>

#include "base/result.h"
#include "device/context.h"

namespace gf::device {

struct HandleEntry {
    std::optional<uint64_t> ping_info_gpa;  // set by TELL_PING_INFO_ADDR
    std::unique_ptr<Context> context;       // set by the first successful ping
};

class HandleTable {
  public:
    // `first` is the first handle tried; tests start near the wrap point.
    explicit HandleTable(uint32_t first = 1) : next_(valid(first) ? first : 1) {}

    // The next handle in counter order that is not live, skipping 0 and 0xFFFFFFFF; ENOSPC
    // only if every valid handle is live.
    Result<uint32_t> generate();
    // The live entry for handle, or nullptr.
    HandleEntry* find(uint32_t handle);
    // Ends a handle, destroying its context; false if it was not live.
    bool destroy(uint32_t handle);

    // Moves the counter, as 2^32 GEN_HANDLEs would; for tests of the wrap.
    void restart_counter_at(uint32_t next) { next_ = valid(next) ? next : 1; }

    size_t size() const { return entries_.size(); }
    // Destroys every context and forgets every handle; the counter restarts at 1.
    void clear();

    template <typename F>
    void for_each(F&& f) const {
        for (const auto& [handle, entry] : entries_) {
            f(handle, entry);
        }
    }

  private:
    static bool valid(uint32_t handle) { return handle != 0 && handle != 0xFFFFFFFF; }

    uint32_t next_;
    std::unordered_map<uint32_t, HandleEntry> entries_;
};

}  // namespace gf::device
