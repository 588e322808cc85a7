#include "pci/mock_backend.h"

#include <cstdio>
#include <cstring>

namespace gf::pci::testing {

std::string hex(uint64_t value) {
    char buffer[32];
    std::snprintf(buffer, sizeof(buffer), "0x%llx", static_cast<unsigned long long>(value));
    return buffer;
}

std::string read_event(uint64_t offset, uint32_t value) {
    return "R " + hex(offset) + " = " + hex(value);
}
std::string write_event(uint64_t offset, uint32_t value) {
    return "W " + hex(offset) + " = " + hex(value);
}

MockBackend::MockBackend() {
    set_ids(0x607D, 0xF153, 1);
    bars[0] = {0xFE00'0000, 0x1000, kResourceMem};
    bars[1] = {0x4'0000'0000, 0x4'0000'0000, kResourceMem | kResourceMem64};
}

void MockBackend::set_ids(uint16_t vendor, uint16_t device, uint8_t revision) {
    std::memcpy(&config[0x00], &vendor, 2);
    std::memcpy(&config[0x02], &device, 2);
    config[0x08] = std::byte{revision};
}

std::vector<std::string> MockBackend::events() const {
    std::lock_guard lock(mutex_);
    return events_;
}

void MockBackend::clear_events() {
    std::lock_guard lock(mutex_);
    events_.clear();
}

uint32_t MockBackend::reg(uint64_t offset) const {
    std::lock_guard lock(mutex_);
    auto it = registers_.find(offset);
    return it == registers_.end() ? 0 : it->second;
}

void MockBackend::set_reg(uint64_t offset, uint32_t value) {
    std::lock_guard lock(mutex_);
    registers_[offset] = value;
}

std::byte* MockBackend::dma_page(uint64_t phys) {
    std::lock_guard lock(mutex_);
    auto it = dma_pages_.find(phys);
    return it == dma_pages_.end() ? nullptr : it->second.get();
}

size_t MockBackend::live_mappings() const {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (bool m : mapped_) {
        n += m ? 1 : 0;
    }
    return n;
}

size_t MockBackend::live_dma_pages() const {
    std::lock_guard lock(mutex_);
    return dma_pages_.size();
}

bool MockBackend::enabled() const {
    std::lock_guard lock(mutex_);
    return enabled_;
}

void MockBackend::log(std::string event) {
    events_.push_back(std::move(event));
}

Result<void> MockBackend::config_read(uint32_t offset, std::span<std::byte> out) {
    std::lock_guard lock(mutex_);
    log("config_read " + hex(offset) + " " + std::to_string(out.size()));
    if (fail_config_read || offset + out.size() > config.size()) {
        return fail(EIO);
    }
    std::memcpy(out.data(), &config[offset], out.size());
    return {};
}

Result<void> MockBackend::config_write(uint32_t offset, std::span<const std::byte> in) {
    std::lock_guard lock(mutex_);
    log("config_write " + hex(offset) + " " + std::to_string(in.size()));
    if (offset + in.size() > config.size()) {
        return fail(EIO);
    }
    std::memcpy(&config[offset], in.data(), in.size());
    return {};
}

Result<void> MockBackend::enable() {
    std::lock_guard lock(mutex_);
    log("enable");
    if (fail_enable) {
        return fail(EIO);
    }
    enabled_ = true;
    return {};
}

void MockBackend::disable() {
    std::lock_guard lock(mutex_);
    log("disable");
    enabled_ = false;
}

BarResource MockBackend::bar_resource(unsigned bar) {
    std::lock_guard lock(mutex_);
    return bars.at(bar);
}

Result<void> MockBackend::request_region(unsigned bar, std::string_view) {
    std::lock_guard lock(mutex_);
    log("request_region " + std::to_string(bar));
    return {};
}

void MockBackend::release_region(unsigned bar) {
    std::lock_guard lock(mutex_);
    log("release_region " + std::to_string(bar));
}

Result<BarMapping> MockBackend::map_bar(unsigned bar) {
    std::lock_guard lock(mutex_);
    log("map " + std::to_string(bar));
    if (fail_map.at(bar)) {
        return fail(EIO);
    }
    mapped_.at(bar) = true;
    return BarMapping{bar, bars.at(bar).length, 0x1000 + bar};
}

void MockBackend::unmap_bar(const BarMapping& mapping) {
    std::lock_guard lock(mutex_);
    log("unmap " + std::to_string(mapping.bar));
    mapped_.at(mapping.bar) = false;
}

uint32_t MockBackend::read32(const BarMapping& mapping, uint64_t offset) {
    std::lock_guard lock(mutex_);
    const uint32_t value = mapping.bar == 0 ? reg(offset) : 0;
    log(read_event(offset, value));
    return value;
}

void MockBackend::write32(const BarMapping& mapping, uint64_t offset, uint32_t value) {
    std::lock_guard lock(mutex_);
    log(write_event(offset, value));
    if (mapping.bar != 0) {
        return;
    }
    registers_[offset] = value;
    if (on_write) {
        on_write(*this, offset, value);
    }
}

Result<DmaBuffer> MockBackend::allocate_dma_page() {
    if (on_dma_alloc) {
        on_dma_alloc();
    }
    std::lock_guard lock(mutex_);
    if (fail_dma) {
        log("dma_alloc failed");
        return fail(ENOMEM);
    }
    const uint64_t phys = next_dma_;
    next_dma_ += kPageSize;
    auto& page = dma_pages_[phys];
    page = std::make_unique<std::byte[]>(kPageSize);
    // Stale bytes, so a test sees whether the page is zeroed before use.
    std::memset(page.get(), 0xA5, kPageSize);
    log("dma_alloc " + hex(phys));
    return DmaBuffer{page.get(), kPageSize, phys, 0};
}

void MockBackend::free_dma_page(const DmaBuffer& buffer) {
    std::lock_guard lock(mutex_);
    log("dma_free " + hex(buffer.phys));
    dma_pages_.erase(buffer.phys);
}

Result<void> MockBackend::verify_dma_page(const DmaBuffer& buffer) {
    std::lock_guard lock(mutex_);
    log("dma_verify " + hex(buffer.phys));
    if (fail_dma_verify) {
        return fail(EIO);
    }
    return {};
}

}  // namespace gf::pci::testing
