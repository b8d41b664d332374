// SPDX-License-Identifier: GPL-2.0
// Fixture: a module whose project has its own tests (kmodtest.json):
// they read its parameter in sysfs while it is loaded.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>
#include <linux/moduleparam.h>

static int answer = 42;
module_param(answer, int, 0444);
MODULE_PARM_DESC(answer, "what the tests read back");

static int __init testee_init(void)
{
	pr_info("loaded, answer %d\n", answer);
	return 0;
}

static void __exit testee_exit(void)
{
	pr_info("unloaded\n");
}

module_init(testee_init);
module_exit(testee_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: a module with its project's own tests");
