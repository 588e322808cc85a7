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
