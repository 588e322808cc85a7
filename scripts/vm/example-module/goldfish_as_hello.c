// SPDX-License-Identifier: GPL-2.0-only OR Apache-2.0
/*
 * goldfish_as_hello: a small guest kernel driver for the goldfish address space
 * device as goldfish-vmm-device serves it, and a starting point for a driver of
 * your own (see docs/vm.md, "Test your own driver"). It binds to 607d:f153
 * revision 1, maps BAR0, writes GUEST_PAGE_SIZE and PHYS_START as the real
 * driver's probe does, then opens `handles` handles one after another the way a
 * driver's open() does:
 *
 *   GEN_HANDLE, TELL_PING_INFO_ADDR with a page of its own (checking the
 * read-back), ALLOCATE_BLOCK and DEALLOCATE_BLOCK of one page, DESTROY_HANDLE
 *
 * all under one register lock, and logs what the device answered. Every failure
 * is logged and unwinds with the lock released, so the next handle still
 * reaches the device: run it with goldfish-vmm-device's --fault options to see
 * each error path.
 */
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>

#define REG_COMMAND 0x00
#define REG_STATUS 0x04
#define REG_GUEST_PAGE_SIZE 0x08
#define REG_BLOCK_SIZE_LOW 0x0C
#define REG_BLOCK_SIZE_HIGH 0x10
#define REG_BLOCK_OFFSET_LOW 0x14
#define REG_BLOCK_OFFSET_HIGH 0x18
#define REG_PING_INFO_ADDR_LOW 0x20
#define REG_PING_INFO_ADDR_HIGH 0x24
#define REG_HANDLE 0x28
#define REG_PHYS_START_LOW 0x2C
#define REG_PHYS_START_HIGH 0x30
#define CMD_ALLOCATE_BLOCK 1
#define CMD_DEALLOCATE_BLOCK 2
#define CMD_GEN_HANDLE 3
#define CMD_DESTROY_HANDLE 4
#define CMD_TELL_PING_INFO_ADDR 5
#define INVALID_HANDLE 0xFFFFFFFFu

static unsigned int handles = 2;
module_param(handles, uint, 0444);
MODULE_PARM_DESC(handles, "handles to open and close at probe (default 2)");

struct hello {
	struct pci_dev *pdev;
	void __iomem *regs;
	struct mutex lock; /* the register sequence of one command */
};

static u32 run(struct hello *h, u32 cmd)
{
	writel(cmd, h->regs + REG_COMMAND);
	return readl(h->regs + REG_STATUS);
}

/* One open and release, as a driver's open() and release() would do them. */
static int hello_handle(struct hello *h, unsigned int n)
{
	struct device *dev = &h->pdev->dev;
	unsigned long page = get_zeroed_page(GFP_KERNEL);
	u64 ping_gpa, back, offset;
	u32 status, handle;
	int err = 0;

	if (!page)
		return -ENOMEM;
	ping_gpa = virt_to_phys((void *)page);

	mutex_lock(&h->lock);
	status = run(h, CMD_GEN_HANDLE);
	handle = readl(h->regs + REG_HANDLE);
	if (status != 0 || handle == INVALID_HANDLE) {
		dev_err(dev, "handle %u: GEN_HANDLE status %u handle %#x\n", n,
			status, handle);
		err = -ENOSPC;
		goto unlock; /* the lock is released on every path */
	}
	writel(lower_32_bits(ping_gpa), h->regs + REG_PING_INFO_ADDR_LOW);
	writel(upper_32_bits(ping_gpa), h->regs + REG_PING_INFO_ADDR_HIGH);
	writel(handle, h->regs + REG_HANDLE);
	run(h, CMD_TELL_PING_INFO_ADDR); /* old hosts answer ENOSYS: see the
					    read-back */
	back = readl(h->regs + REG_PING_INFO_ADDR_LOW) |
	       (u64)readl(h->regs + REG_PING_INFO_ADDR_HIGH) << 32;
	if (back != ping_gpa) {
		dev_err(dev,
			"handle %u: ping page %#llx read back as %#llx: "
			"refused\n",
			handle, ping_gpa, back);
		err = -EIO;
		goto destroy;
	}
	writel(PAGE_SIZE, h->regs + REG_BLOCK_SIZE_LOW);
	writel(0, h->regs + REG_BLOCK_SIZE_HIGH);
	status = run(h, CMD_ALLOCATE_BLOCK);
	offset = readl(h->regs + REG_BLOCK_OFFSET_LOW) |
		 (u64)readl(h->regs + REG_BLOCK_OFFSET_HIGH) << 32;
	if (status != 0) {
		dev_err(dev, "handle %u: ALLOCATE_BLOCK status %u\n", handle,
			status);
		err = -ENOMEM;
		goto destroy;
	}
	writel(lower_32_bits(offset), h->regs + REG_BLOCK_OFFSET_LOW);
	writel(upper_32_bits(offset), h->regs + REG_BLOCK_OFFSET_HIGH);
	status = run(h, CMD_DEALLOCATE_BLOCK);
	if (status != 0) {
		/* A block the host would not take back: it stays allocated. */
		dev_err(dev, "handle %u: DEALLOCATE_BLOCK %#llx status %u\n",
			handle, offset, status);
		err = -EIO;
	} else {
		dev_info(dev, "handle %u: ping page %#llx, block %#llx: ok\n",
			 handle, ping_gpa, offset);
	}
destroy:
	writel(handle, h->regs + REG_HANDLE);
	status = run(h, CMD_DESTROY_HANDLE);
	if (status != 0)
		dev_err(dev, "handle %u: DESTROY_HANDLE status %u\n", handle,
			status);
unlock:
	mutex_unlock(&h->lock);
	/* After DESTROY_HANDLE the device no longer writes the page. */
	free_page(page);
	return err;
}

static int hello_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct hello *h;
	unsigned int i, ok = 0;
	u64 bar1;
	int err;

	if (pdev->revision != 1)
		return -ENODEV;
	h = devm_kzalloc(&pdev->dev, sizeof(*h), GFP_KERNEL);
	if (!h)
		return -ENOMEM;
	h->pdev = pdev;
	mutex_init(&h->lock);
	err = pcim_enable_device(pdev);
	if (err)
		return err;
	err = pcim_iomap_regions(pdev, BIT(0), "goldfish_as_hello");
	if (err)
		return err;
	h->regs = pcim_iomap_table(pdev)[0];
	bar1 = pci_resource_start(pdev, 1);

	/* Each access below traps and is answered synchronously. */
	writel(PAGE_SIZE, h->regs + REG_GUEST_PAGE_SIZE);
	writel(lower_32_bits(bar1), h->regs + REG_PHYS_START_LOW);
	writel(upper_32_bits(bar1), h->regs + REG_PHYS_START_HIGH);
	dev_info(&pdev->dev, "BAR1 %pa (%llu MiB)\n", &pdev->resource[1].start,
		 (unsigned long long)(pci_resource_len(pdev, 1) >> 20));
	for (i = 0; i < handles; ++i)
		ok += hello_handle(h, i) == 0;
	dev_info(&pdev->dev, "%u of %u handles ok\n", ok, handles);
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
	"Small goldfish address space driver for goldfish-vmm-device");
MODULE_LICENSE("GPL");
