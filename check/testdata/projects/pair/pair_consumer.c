// SPDX-License-Identifier: GPL-2.0
// Fixture: the consumer of a two-module project. Its name sorts first
// and its Kbuild names it first: the load order must come from depends.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>

int pair_provider_answer(void);

static int __init pair_consumer_init(void)
{
	pr_info("the provider says %d\n", pair_provider_answer());
	return 0;
}

static void __exit pair_consumer_exit(void)
{
	pr_info("unloaded\n");
}

module_init(pair_consumer_init);
module_exit(pair_consumer_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: the user of a pair");
