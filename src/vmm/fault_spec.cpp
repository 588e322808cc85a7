#include "vmm/fault_spec.h"

#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "hw/context_types.h"
#include "vmm/text.h"

namespace gf::vmm {
namespace {

using device::DeviceFault;

enum class Value { kNone, kStatus, kContextType, kDuration };

struct Kind {
    std::string_view name;
    DeviceFault fault;
    Value value;
    bool value_required;
};

constexpr std::array kKinds = {
    Kind{"gen-handle", DeviceFault::kGenHandle, Value::kNone, false},
    Kind{"ping-info-readback", DeviceFault::kPingInfoReadBack, Value::kNone, false},
    Kind{"allocate-status", DeviceFault::kBlockAllocation, Value::kStatus, false},
    Kind{"deallocate-status", DeviceFault::kBlockDeallocation, Value::kStatus, false},
    Kind{"status-above-int-max", DeviceFault::kStatusAboveIntMax, Value::kNone, false},
    Kind{"host-memory", DeviceFault::kHostMemory, Value::kNone, false},
    Kind{"refuse-context", DeviceFault::kContextRefused, Value::kContextType, true},
    Kind{"delay", DeviceFault::kCommandDelay, Value::kDuration, true},
};

std::optional<uint64_t> status(std::string_view text) {
    if (text == "ENOMEM") {
        return ENOMEM;
    }
    if (text == "EINVAL") {
        return EINVAL;
    }
    if (text == "ENOSPC") {
        return ENOSPC;
    }
    if (text == "EIO") {
        return EIO;
    }
    auto v = parse_u64(text);
    if (!v || *v == 0 || *v > UINT32_MAX) {
        return std::nullopt;  // 0 would be success, not a fault
    }
    return v;
}

std::optional<uint64_t> context_type(std::string_view text) {
    for (const hw::ContextTypeInfo& info : hw::kContextTypes) {
        if (text == info.name) {
            return static_cast<uint64_t>(info.type);
        }
    }
    return parse_u64(text);
}

// "250us", "3ms", "1s", or microseconds.
std::optional<uint64_t> duration_us(std::string_view text) {
    uint64_t scale = 1;
    for (const auto& [suffix, s] :
         {std::pair<std::string_view, uint64_t>{"us", 1}, {"ms", 1000}, {"s", 1000000}}) {
        if (text.size() > suffix.size() && text.ends_with(suffix)) {
            text.remove_suffix(suffix.size());
            scale = s;
            break;
        }
    }
    auto v = parse_u64(text);
    if (!v || *v > device::kMaxCommandDelayUs / scale || *v * scale == 0) {
        return std::nullopt;
    }
    return *v * scale;
}

std::string_view value_help(Value value) {
    switch (value) {
        case Value::kStatus:
            return "a STATUS value: ENOMEM, EINVAL, ENOSPC, EIO or a number from 1";
        case Value::kContextType:
            return "a context type: a number or a name such as host_memory_allocator";
        case Value::kDuration:
            return "a duration above 0 and at most 10s, such as 250us or 5ms";
        case Value::kNone:
            break;
    }
    return "nothing";
}

}  // namespace

std::string fault_kinds() {
    std::string out;
    for (const Kind& kind : kKinds) {
        out.append(out.empty() ? "" : ", ").append(kind.name);
    }
    return out;
}

tl::expected<FaultSpec, std::string> parse_fault_spec(std::string_view text) {
    const auto bad = [&](const std::string& why) {
        return tl::unexpected(cat({"--fault ", text, ": ", why}));
    };
    std::string_view head = text.substr(0, text.find(','));
    std::string_view rest = head.size() < text.size() ? text.substr(head.size() + 1) : "";
    std::optional<std::string_view> value;
    if (const size_t eq = head.find('='); eq != std::string_view::npos) {
        value = head.substr(eq + 1);
        head = head.substr(0, eq);
    }
    const Kind* kind = nullptr;
    for (const Kind& k : kKinds) {
        if (k.name == head) {
            kind = &k;
        }
    }
    if (kind == nullptr) {
        return bad(cat({"no such fault (the faults: ", fault_kinds(), ")"}));
    }
    FaultSpec spec{kind->fault, {.skip = 0, .every = 1, .times = 0}, std::string(text)};
    if (kind->value == Value::kNone && value) {
        return bad(cat({kind->name, " takes no value"}));
    }
    if (kind->value_required && !value) {
        return bad(cat(
            {kind->name, " needs ", value_help(kind->value), ", as in ", kind->name, "=VALUE"}));
    }
    if (value) {
        std::optional<uint64_t> v;
        switch (kind->value) {
            case Value::kStatus:
                v = status(*value);
                break;
            case Value::kContextType:
                v = context_type(*value);
                break;
            case Value::kDuration:
                v = duration_us(*value);
                break;
            case Value::kNone:
                break;
        }
        if (!v) {
            return bad(cat({"'", *value, "' is not ", value_help(kind->value)}));
        }
        spec.schedule.value = *v;
    }
    bool every_given = false;
    bool probability_given = false;
    while (!rest.empty()) {
        std::string_view setting = rest.substr(0, rest.find(','));
        rest = setting.size() < rest.size() ? rest.substr(setting.size() + 1) : "";
        const size_t eq = setting.find('=');
        if (eq == std::string_view::npos) {
            return bad(
                cat({"'", setting,
                     "' is not a setting (after=N, every=N, times=N, probability=P, seed=S)"}));
        }
        const std::string_view key = setting.substr(0, eq);
        const std::string_view v = setting.substr(eq + 1);
        if (key == "probability") {
            char* end = nullptr;
            const std::string copy(v);
            errno = 0;
            const double p = std::strtod(copy.c_str(), &end);
            if (copy.empty() || errno != 0 || *end != '\0' || !std::isfinite(p) || p <= 0 ||
                p > 1) {
                return bad(cat({"probability=", copy, ": a number above 0 and at most 1"}));
            }
            spec.schedule.probability = p;
            probability_given = true;
            continue;
        }
        const std::optional<uint64_t> n = parse_u64(v);
        const bool is32 = key != "seed";
        if (!n || (is32 && *n > UINT32_MAX)) {
            return bad(cat({key, "=", v, ": not a number", is32 ? " up to 4294967295" : ""}));
        }
        if (key == "after") {
            spec.schedule.skip = static_cast<uint32_t>(*n);
        } else if (key == "every") {
            if (*n == 0) {
                return bad("every=0: every is at least 1");
            }
            spec.schedule.every = static_cast<uint32_t>(*n);
            every_given = true;
        } else if (key == "times") {
            spec.schedule.times = static_cast<uint32_t>(*n);
        } else if (key == "seed") {
            spec.schedule.seed = *n;
        } else {
            return bad(cat({"unknown setting '", key,
                            "' (after=N, every=N, times=N, probability=P, seed=S)"}));
        }
    }
    if (every_given && probability_given) {
        return bad("every and probability do not go together");
    }
    return spec;
}

}  // namespace gf::vmm
