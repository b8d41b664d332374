// Package bootimage reads kernel images: what a bzImage or vmlinux says
// about itself ([ReadImage], [CheckTree] against a build tree), the ELF
// vmlinux inside an x86 bzImage that QEMU boots through its PVH entry
// ([ExtractVmlinux]), the arm64 Image inside a gzip vmlinuz, and the
// drivers an arm64 guest must load for its result port ([ResultPort]).
//
// It works on files and bytes only: package kernels decides which images
// are extracted and caches the results. It is apart because image
// formats (the x86 boot protocol, ELF notes, the arm64 Image header) are
// their own subject, tested on synthetic images without a cache.
package bootimage
