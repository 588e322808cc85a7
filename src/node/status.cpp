#include "node/status.h"

#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <utility>

namespace gf::node {
namespace {

std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
    return buf;
}

bool unsigned_field(const nlohmann::json& j, const char* key, uint64_t& out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned()) {
        return false;
    }
    out = it->get<uint64_t>();
    return true;
}

// The "asg" object: every field, or nothing.
std::optional<AsgStatus> asg_from_json(const nlohmann::json& j) {
    AsgStatus a;
    auto sink = j.find("sink");
    if (!j.is_object() || sink == j.end() || !sink->is_string() ||
        !unsigned_field(j, "buffer_size", a.buffer_size) ||
        !unsigned_field(j, "write_step", a.write_step) || !unsigned_field(j, "blocks", a.blocks) ||
        !unsigned_field(j, "protocol_errors", a.protocol_errors) ||
        !unsigned_field(j, "bytes_in", a.bytes_in) ||
        !unsigned_field(j, "bytes_out", a.bytes_out) ||
        !unsigned_field(j, "reply_refused", a.reply_refused)) {
        return std::nullopt;
    }
    a.sink = sink->get<std::string>();
    return a;
}

}  // namespace

std::string to_json(const Status& s) {
    nlohmann::ordered_json contexts = nlohmann::ordered_json::object();
    for (const auto& [type, count] : s.contexts) {
        contexts[std::to_string(type)] = count;
    }
    nlohmann::ordered_json j = {
        {"node", s.node},
        {"device", s.device},
        {"bar1_phys_start", s.bar1_phys_start},
        {"bar1_size", s.bar1_size},
        {"open_files", s.open_files},
        {"handles", s.handles},
        {"blocks", s.blocks},
        {"block_bytes", s.block_bytes},
        {"claims", s.claims},
        {"contexts", contexts},
        {"area_free_bytes", s.area_free_bytes},
        {"mmap", s.mmap},
        {"lingering_files", s.lingering_files},
        {"mapping_scans", s.mapping_scans},
        {"seal_checks", s.seal_checks},
        {"remap_failures", s.remap_failures},
        {"stalled_contexts", s.stalled_contexts},
    };
    if (!s.mmap) {
        j["mmap_unavailable"] = s.mmap_reason;
    }
    if (s.asg) {
        j["asg"] = {
            {"sink", s.asg->sink},
            {"buffer_size", s.asg->buffer_size},
            {"write_step", s.asg->write_step},
            {"blocks", s.asg->blocks},
            {"protocol_errors", s.asg->protocol_errors},
            {"bytes_in", s.asg->bytes_in},
            {"bytes_out", s.asg->bytes_out},
            {"reply_refused", s.asg->reply_refused},
        };
    }
    return j.dump(2) + "\n";
}

Result<Status> status_from_json(std::string_view json) {
    nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) {
        return fail(EINVAL);
    }
    Status s;
    auto number = [&](const char* key, uint64_t& out) { return unsigned_field(j, key, out); };
    bool ok = number("bar1_phys_start", s.bar1_phys_start) && number("bar1_size", s.bar1_size) &&
              number("open_files", s.open_files) && number("handles", s.handles) &&
              number("blocks", s.blocks) && number("block_bytes", s.block_bytes) &&
              number("claims", s.claims) && number("area_free_bytes", s.area_free_bytes) &&
              number("lingering_files", s.lingering_files);
    // Newer counters: absent from an older daemon's document, they read as 0.
    for (auto [key, out] :
         {std::pair{"mapping_scans", &s.mapping_scans}, std::pair{"seal_checks", &s.seal_checks},
          std::pair{"remap_failures", &s.remap_failures},
          std::pair{"stalled_contexts", &s.stalled_contexts}}) {
        ok = ok && (!j.contains(key) || number(key, *out));
    }
    auto mmap = j.find("mmap");
    ok = ok && mmap != j.end() && mmap->is_boolean();
    if (ok) {
        s.mmap = mmap->get<bool>();
        auto reason = j.find("mmap_unavailable");
        if (reason != j.end() && reason->is_string()) {
            s.mmap_reason = reason->get<std::string>();
        }
    }
    auto node = j.find("node");
    auto device = j.find("device");
    auto contexts = j.find("contexts");
    if (!ok || node == j.end() || !node->is_string() || device == j.end() || !device->is_string() ||
        contexts == j.end() || !contexts->is_object()) {
        return fail(EINVAL);
    }
    s.node = node->get<std::string>();
    s.device = device->get<std::string>();
    for (const auto& [type, count] : contexts->items()) {
        char* end = nullptr;
        unsigned long t = std::strtoul(type.c_str(), &end, 10);
        if (end == type.c_str() || *end != '\0' || t > UINT32_MAX || !count.is_number_unsigned()) {
            return fail(EINVAL);
        }
        s.contexts[static_cast<uint32_t>(t)] = count.get<uint64_t>();
    }
    // Absent for a real device (--pci); present, it must be whole.
    if (auto asg = j.find("asg"); asg != j.end()) {
        s.asg = asg_from_json(*asg);
        if (!s.asg) {
            return fail(EINVAL);
        }
    }
    return s;
}

std::string to_text(const Status& s) {
    std::string out;
    auto line = [&](const std::string& key, const std::string& value) {
        out += key + ": " + value + "\n";
    };
    line("node", s.node);
    line("device", s.device);
    line("BAR1", hex(s.bar1_phys_start) + ", " + std::to_string(s.bar1_size >> 20) + " MiB");
    line("open files", std::to_string(s.open_files));
    line("host handles", std::to_string(s.handles));
    line("blocks", std::to_string(s.blocks) + " (" + std::to_string(s.block_bytes) + " bytes)");
    line("shared claims", std::to_string(s.claims));
    std::string contexts;
    for (const auto& [type, count] : s.contexts) {
        contexts += (contexts.empty() ? "" : ", ") + std::string("type ") + std::to_string(type) +
                    ": " + std::to_string(count);
    }
    line("contexts", contexts.empty() ? "none" : contexts);
    line("BAR1 free", std::to_string(s.area_free_bytes) + " bytes");
    line("mmap", s.mmap ? "available" : "unavailable: " + s.mmap_reason);
    line("lingering files", std::to_string(s.lingering_files));
    line("mapping checks", std::to_string(s.mapping_scans) + " scans, " +
                               std::to_string(s.seal_checks) + " seals tried, " +
                               std::to_string(s.remap_failures) + " ranges not mapped back");
    line("stalled contexts", std::to_string(s.stalled_contexts));
    if (s.asg) {
        line("ASG sink", s.asg->sink + " (buffer " + std::to_string(s.asg->buffer_size) +
                             " bytes, write step " + std::to_string(s.asg->write_step) + " bytes)");
        line("ASG blocks", std::to_string(s.asg->blocks));
        line("ASG bytes",
             std::to_string(s.asg->bytes_in) + " in, " + std::to_string(s.asg->bytes_out) + " out");
        line("ASG protocol errors", std::to_string(s.asg->protocol_errors));
        line("ASG reply bytes refused", std::to_string(s.asg->reply_refused));
    }
    return out;
}

}  // namespace gf::node
