// SPDX-License-Identifier: GPL-2.0
// A module that does nothing: the fixtures' well-built reference.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>

static int __init hello_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit hello_exit(void)
{
	pr_info("unloaded\n");
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: a module that builds and checks clean");
