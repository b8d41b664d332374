// Package cachefs holds the rules every entry of kmodtest's cache follows,
// so that the kernels, build roots, modules, vmlinux files and base
// initramfs images all get them the same way:
//
//   - an entry is guarded by an flock lock file ([Lock]), which excludes
//     goroutines and processes alike;
//   - it is built in a staging directory next to its final name and renamed
//     into place, with its manifest written last ([Stage]); leftovers of
//     interrupted builds are removed under the lock, since only a dead
//     process can have left them;
//   - the files it records ([FileSum]) are checked for size and sha256 on
//     every use, so a truncated or corrupt entry is found and rebuilt;
//   - nothing outside the directory the harness owns is ever removed
//     ([RemoveAll]), and the cache root carries a marker file ([Claim]) so
//     that cleaning never deletes a directory kmodtest did not create.
package cachefs
