// SPDX-License-Identifier: GPL-2.0
// Fixture: a module that refuses devices above 8. Its kmodtest.json
// loads it with devices=1000: marked refused (refuses/) the params step
// passes; not marked (refuses-unmarked/) it fails.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>
#include <linux/moduleparam.h>

static int devices = 1;
module_param(devices, int, 0444);
MODULE_PARM_DESC(devices, "how many devices, 1 to 8");

static int __init refuses_init(void)
{
	if (devices < 1 || devices > 8) {
		pr_err("devices=%d: want 1 to 8\n", devices);
		return -EINVAL;
	}
	pr_info("loaded with %d devices\n", devices);
	return 0;
}

static void __exit refuses_exit(void)
{
	pr_info("unloaded\n");
}

module_init(refuses_init);
module_exit(refuses_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: a module that refuses a parameter set");
