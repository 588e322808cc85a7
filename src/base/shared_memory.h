// Copies to and from memory another party may write at any moment: guest RAM that the
// device model reaches by "DMA", a driver's ping page. Every access to the shared side is a
// relaxed atomic, as a kernel touches device-shared memory with READ_ONCE/WRITE_ONCE: a
// concurrent writer (a hostile VMM pinging a handle at will) can tear values, which readers
// treat as untrusted anyway, but can never make the copy a data race.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace gf {

namespace shared_memory_detail {

inline bool word_aligned(const std::byte* p) {
    return reinterpret_cast<uintptr_t>(p) % alignof(uint64_t) == 0;
}

// Calls byte(i) up to the shared side's first word boundary, word(i) for each whole word
// after it, then byte(i) for the tail.
template <typename Byte, typename Word>
void for_each_access(std::byte* shared, size_t n, Byte&& byte, Word&& word) {
    size_t i = 0;
    for (; i < n && !word_aligned(shared + i); ++i) {
        byte(i);
    }
    for (; n - i >= sizeof(uint64_t); i += sizeof(uint64_t)) {
        word(i);
    }
    for (; i < n; ++i) {
        byte(i);
    }
}

// Shared memory is mapped memory (mmap), whose words are objects of any trivial type: the
// uint64_t views below are of such memory only.
inline std::atomic_ref<uint64_t> word_at(std::byte* p) {
    return std::atomic_ref<uint64_t>(*reinterpret_cast<uint64_t*>(p));
}

}  // namespace shared_memory_detail

// out <- shared[0, out.size()); shared must be at least as large.
inline void copy_from_shared(std::span<std::byte> out, std::span<std::byte> shared) {
    using namespace shared_memory_detail;
    for_each_access(
        shared.data(), out.size(),
        [&](size_t i) {
            out[i] = std::atomic_ref<std::byte>(shared[i]).load(std::memory_order_relaxed);
        },
        [&](size_t i) {
            const uint64_t word = word_at(&shared[i]).load(std::memory_order_relaxed);
            std::memcpy(&out[i], &word, sizeof(word));
        });
}

// shared[0, in.size()) <- in; shared must be at least as large.
inline void copy_to_shared(std::span<std::byte> shared, std::span<const std::byte> in) {
    using namespace shared_memory_detail;
    for_each_access(
        shared.data(), in.size(),
        [&](size_t i) {
            std::atomic_ref<std::byte>(shared[i]).store(in[i], std::memory_order_relaxed);
        },
        [&](size_t i) {
            uint64_t word;
            std::memcpy(&word, &in[i], sizeof(word));
            word_at(&shared[i]).store(word, std::memory_order_relaxed);
        });
}

// The same two copies for bulk data (an ASG transfer buffer): on x86-64 one `rep movsb`, at
// memcpy's speed where the word loops above run 3-5x slower (they cannot be vectorized). The
// instruction is opaque to the compiler, so a concurrent writer can tear bytes, as above, but
// never make the copy a data race; the kernel copies user memory the same way. Small copies,
// other architectures and sanitizer builds (which must see the accesses) take the loops.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GF_SHARED_MEMORY_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GF_SHARED_MEMORY_SANITIZED 1
#endif
#if defined(__x86_64__) && !defined(GF_SHARED_MEMORY_SANITIZED)
#define GF_SHARED_MEMORY_MOVSB 1
#endif

namespace shared_memory_detail {
inline constexpr size_t kBulkMin = 256;  // below this rep movsb's start-up costs more

#ifdef GF_SHARED_MEMORY_MOVSB
// The direction flag is clear at every call (the ABI's rule), so it copies forwards.
inline void movsb(void* dst, const void* src, size_t n) {
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}
#endif
}  // namespace shared_memory_detail

inline void copy_from_shared_bulk(std::span<std::byte> out, std::span<std::byte> shared) {
#ifdef GF_SHARED_MEMORY_MOVSB
    if (out.size() >= shared_memory_detail::kBulkMin) {
        shared_memory_detail::movsb(out.data(), shared.data(), out.size());
        return;
    }
#endif
    copy_from_shared(out, shared);
}

inline void copy_to_shared_bulk(std::span<std::byte> shared, std::span<const std::byte> in) {
#ifdef GF_SHARED_MEMORY_MOVSB
    if (in.size() >= shared_memory_detail::kBulkMin) {
        shared_memory_detail::movsb(shared.data(), in.data(), in.size());
        return;
    }
#endif
    copy_to_shared(shared, in);
}

// Every byte of shared <- value.
inline void fill_shared(std::span<std::byte> shared, std::byte value) {
    using namespace shared_memory_detail;
    uint64_t word;
    std::memset(&word, static_cast<int>(value), sizeof(word));
    for_each_access(
        shared.data(), shared.size(),
        [&](size_t i) {
            std::atomic_ref<std::byte>(shared[i]).store(value, std::memory_order_relaxed);
        },
        [&](size_t i) { word_at(&shared[i]).store(word, std::memory_order_relaxed); });
}

}  // namespace gf
