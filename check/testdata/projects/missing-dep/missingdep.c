// SPDX-License-Identifier: GPL-2.0
// Fixture: a module that needs a symbol no module of the kernel exports.
// insmod must fail, and the load step must show the kernel's
// "Unknown symbol" line.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>

extern int kmodtest_absent_provider(void);

static int __init missingdep_init(void)
{
	return kmodtest_absent_provider();
}

static void __exit missingdep_exit(void)
{
}

module_init(missingdep_init);
module_exit(missingdep_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: a symbol the kernel does not have");
