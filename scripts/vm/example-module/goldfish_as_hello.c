// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/*
 * goldfish_as_hello: the smallest guest kernel driver for the goldfish address
 * space device as goldfish-vmm-device serves it. It binds to 607d:f153 revision
 * 1, maps BAR0, writes GUEST_PAGE_SIZE and PHYS_START as the real driver's
 * probe does, asks for one handle and gives it back, and logs what the device
 * answered. A starting point for a driver of your own; see docs/vm.md.
 */
#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci.h>

#define REG_COMMAND 0x00
#define REG_STATUS 0x04
#define REG_GUEST_PAGE_SIZE 0x08
#define REG_HANDLE 0x28
#define REG_PHYS_START_LOW 0x2C
#define REG_PHYS_START_HIGH 0x30
#define CMD_GEN_HANDLE 3
#define CMD_DESTROY_HANDLE 4

static int hello_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	void __iomem *regs;
	u32 status, handle;
	u64 bar1;
	int err;

	if (pdev->revision != 1)
		return -ENODEV;
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0), "goldfish_as_hello");
	if (err)
		return err;
	regs = pcim_iomap_table(pdev)[0];
	bar1 = pci_resource_start(pdev, 1);

	/* Each access below traps and is answered synchronously. */
	writel(PAGE_SIZE, regs + REG_GUEST_PAGE_SIZE);
	writel(lower_32_bits(bar1), regs + REG_PHYS_START_LOW);
	writel(upper_32_bits(bar1), regs + REG_PHYS_START_HIGH);
	writel(CMD_GEN_HANDLE, regs + REG_COMMAND);
	status = readl(regs + REG_STATUS);
	handle = readl(regs + REG_HANDLE);
	dev_info(&pdev->dev,
		 "BAR1 %pa (%llu MiB), GEN_HANDLE status %u handle %u\n",
		 &pdev->resource[1].start,
		 (unsigned long long)(pci_resource_len(pdev, 1) >> 20), status,
		 handle);
	if (status == 0) {
		writel(handle, regs + REG_HANDLE);
		writel(CMD_DESTROY_HANDLE, regs + REG_COMMAND);
		dev_info(&pdev->dev, "DESTROY_HANDLE status %u\n",
			 readl(regs + REG_STATUS));
	}
	return 0;
}

static const struct pci_device_id hello_ids[] = {{PCI_DEVICE(0x607d, 0xf153)},
						 {}};
MODULE_DEVICE_TABLE(pci, hello_ids);

static struct pci_driver hello_driver = {
	.name = "goldfish_as_hello",
	.id_table = hello_ids,
	.probe = hello_probe,
};
module_pci_driver(hello_driver);

MODULE_DESCRIPTION(
	"Minimal goldfish address space driver for goldfish-vmm-device");
MODULE_LICENSE("GPL");
