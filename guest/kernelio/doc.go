// Package kernelio is the guest's window on the running kernel, as the
// prober's steps read and set it: the kernel log (/dev/kmsg, with a
// marker per step and the module's own lines), the taint mask, debugfs
// (kmemleak scans, gcov data), fault injection (fail-nth, failslab),
// /proc/meminfo, the dynamic debug control and loading driver modules
// for the result port.
//
// It is apart from guest/prober so that the prober's main package holds
// the steps and their runner, and these kernel interfaces, which know
// nothing of steps, can be read and tested on their own. Like the
// prober it runs in the guest only and imports no host package.
package kernelio
