// SPDX-License-Identifier: GPL-2.0
// Fixture: a module that uses the kernel's videodev (a module, itself
// needing mc): its load must first load mc and videodev from the
// kernel's own package, in that order (decompressed on kernels that
// ship .ko.xz).
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>
#include <media/v4l2-dev.h>

static int __init needsvideodev_init(void)
{
	struct video_device *vdev = video_device_alloc();

	if (!vdev)
		return -ENOMEM;
	video_device_release(vdev);
	pr_info("loaded\n");
	return 0;
}

static void __exit needsvideodev_exit(void)
{
	pr_info("unloaded\n");
}

module_init(needsvideodev_init);
module_exit(needsvideodev_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodtest fixture: a module depending on the kernel's videodev");
