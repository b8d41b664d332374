// SPDX-License-Identifier: GPL-2.0
// Fixture: the provider of a two-module project; pair_consumer uses its
// symbol, so it must load first and unload last.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>

int pair_provider_answer(void)
{
	return 42;
}
EXPORT_SYMBOL_GPL(pair_provider_answer);

static int __init pair_provider_init(void)
{
	pr_info("loaded\n");
	return 0;
}

static void __exit pair_provider_exit(void)
{
	pr_info("unloaded\n");
}

module_init(pair_provider_init);
module_exit(pair_provider_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: the provider of a pair");
