// Counters in one MAP_SHARED anonymous page: forked children count the work they have done,
// and the parent waits on those counts (bounded) before it acts, instead of guessing how much
// fits in some milliseconds on a machine of unknown speed.
#pragma once

#include <sys/mman.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gf::testing {

class SharedCounters {
  public:
    static constexpr size_t kCount = 4096 / sizeof(uint64_t);

    SharedCounters()
        : page_(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0)) {}
    ~SharedCounters() {
        if (page_ != MAP_FAILED) {
            ::munmap(page_, 4096);
        }
    }
    SharedCounters(const SharedCounters&) = delete;
    SharedCounters& operator=(const SharedCounters&) = delete;

    // False if the page could not be mapped; nothing else may be called then.
    bool ok() const { return page_ != MAP_FAILED; }

    // The word behind counter `i` (< kCount), for a child that stores its own count.
    // Sound to share across fork: MAP_SHARED keeps one page for parent and children, and
    // every access goes through an atomic_ref on an aligned word.
    uint64_t* word(size_t i) const { return static_cast<uint64_t*>(page_) + i; }

    void store(size_t i, uint64_t value) const {
        std::atomic_ref<uint64_t>(*word(i)).store(value, std::memory_order_release);
    }
    void add(size_t i) const {
        std::atomic_ref<uint64_t>(*word(i)).fetch_add(1, std::memory_order_release);
    }
    uint64_t load(size_t i) const {
        return std::atomic_ref<uint64_t>(*word(i)).load(std::memory_order_acquire);
    }

  private:
    void* page_;
};

}  // namespace gf::testing
