// SPDX-License-Identifier: GPL-2.0
// A broken fixture: module init allocates two buffers, and when the
// second allocation fails its error path returns without freeing the
// first. A plain load never shows it; the debug kernel's init-faults
// sweep fails the second allocation and kmemleak finds the first.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>
#include <linux/slab.h>

static void *table;
static void *names;

static int __init init_leak_init(void)
{
	table = kzalloc(256, GFP_KERNEL);
	if (!table)
		return -ENOMEM;
	names = kzalloc(512, GFP_KERNEL);
	if (!names)
		return -ENOMEM; /* BUG: table is never freed */
	pr_info("loaded\n");
	return 0;
}

static void __exit init_leak_exit(void)
{
	kfree(names);
	kfree(table);
	pr_info("unloaded\n");
}

module_init(init_leak_init);
module_exit(init_leak_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: init's error path leaks its first allocation");
