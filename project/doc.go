// Package project reads an out-of-tree module project: what it builds,
// which modules result, which kernels it is for, and what kmodtest should
// do with them. A project is a directory with a dkms.conf, a kmodtest.json
// manifest, both, or neither (a plain Kbuild directory).
//
// # dkms.conf
//
// A dkms.conf is a bash fragment that DKMS sources with a few variables
// set. Load reads it the same way: bash sources it in a clean environment
// and the variables it leaves are read back, so quoting, arrays by index
// (BUILT_MODULE_NAME[1]=...), comments, ${PACKAGE_NAME} and the
// conditionals some projects use (v4l2loopback's test of the kernel's
// .config) behave as under DKMS. The variables DKMS sets before sourcing
// are:
//
//	kernelver          the kernel's release (uname -r)
//	kernel_source_dir  the kernel's headers tree
//	dkms_tree          the directory holding NAME/VERSION/build, the build directory
//	source_tree        where the sources live (/usr/src)
//	arch               the kernel's machine name (x86_64, aarch64)
//
// Load gives them as their own references (kernelver is the text
// "${kernelver}"), so MAKE and CLEAN keep them and the build expands them
// where it runs, with the paths of that place (the host or a build
// root). [Project.ForKernel] sources the file again with the kernel's real
// values for what depends on the kernel: BUILD_EXCLUSIVE_*, MAKE_MATCH,
// and conditionals. Sourcing runs the file as a program, as DKMS does: only
// read projects you would build.
//
// # kmodtest.json
//
// The manifest adds what DKMS does not say; see [Manifest]. Where both
// name the same thing (the package name, the modules) the manifest wins.
package project
