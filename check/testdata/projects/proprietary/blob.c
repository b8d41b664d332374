// SPDX-License-Identifier: GPL-2.0
// Fixture: a module that declares a license that is not GPL-compatible.
// The kernel taints itself with P when it loads: the check notes that as
// expected (modinfo said so) and the load passes.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>

static int __init blob_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit blob_exit(void)
{
	pr_info("unloaded\n");
}

module_init(blob_init);
module_exit(blob_exit);
MODULE_LICENSE("Proprietary");
MODULE_DESCRIPTION("kmodtest fixture: a module whose license taints the kernel with P");
