// SPDX-License-Identifier: GPL-2.0
// Fixture: a module whose exit function WARNs. It loads clean; the
// unload step must fail, naming the kernel's WARNING.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>

static int __init warnexit_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit warnexit_exit(void)
{
	WARN(1, "warnexit: leaving something behind");
}

module_init(warnexit_init);
module_exit(warnexit_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: a WARN in the exit function");
