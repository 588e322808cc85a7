// Context ("subdevice") types: the `metadata` of a handle's first ping selects one
// (docs/contexts.md). One table for the device model and the client library.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace gf::hw {

enum class ContextType : uint32_t {
    Graphics = 0,  // ASG, the gfxstream transport
    Media = 1,
    HostMemoryAllocator = 5,
    SharedSlotsHostMemoryAllocator = 6,
};

struct ContextTypeInfo {
    ContextType type;
    std::string_view name;
};

inline constexpr std::array kContextTypes = {
    ContextTypeInfo{ContextType::Graphics, "graphics"},
    ContextTypeInfo{ContextType::Media, "media"},
    ContextTypeInfo{ContextType::HostMemoryAllocator, "host_memory_allocator"},
    ContextTypeInfo{ContextType::SharedSlotsHostMemoryAllocator,
                    "shared_slots_host_memory_allocator"},
};

// The name of a context type number, or nullopt for a number no context has.
constexpr std::optional<std::string_view> context_type_name(uint64_t number) {
    for (const ContextTypeInfo& info : kContextTypes) {
        if (static_cast<uint64_t>(info.type) == number) {
            return info.name;
        }
    }
    return std::nullopt;
}

}  // namespace gf::hw
