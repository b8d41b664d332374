// Package vmtests boots every kernel of the matrix under QEMU with the
// NetlinkGreetings module and the guest prober, and asserts each step of
// the prober's run as its own subtest: TestModule/<kernel>/<step>.
//
// Run it with `go test ./vmtests` (add -v to see every step). The
// orchestration lives in package harness; this package parses the flags
// into harness.Options and asserts the verdicts. Flags, each with an
// environment variable that serves as its default:
//
//	-kernels 6.1,7.2   KMODTEST_KERNELS   kernels of the matrix to run (default: all)
//	-steps core|full   KMODTEST_STEPS     core load/greet/unload steps (default), or every scenario (make test, CI)
//	-kernel PATH       KMODTEST_KERNEL    bring your own kernel: an ELF vmlinux or a bzImage …
//	-kdir PATH         KMODTEST_KDIR      … and the built tree to compile the module against
//	-accel kvm|tcg     KMODTEST_ACCEL     force an accelerator (default: KVM when QEMU can use it)
//	-guest-cpu MODEL   KMODTEST_CPU       guest CPU model, as QEMU names it (Skylake-Client, EPYC-Milan; default: qemu64 under TCG, host under KVM)
//	                                      (not -cpu: go test has its own flag of that name)
//	-fixtures          KMODTEST_FIXTURES=1 also prove the detectors on the broken modules in kmod/fixtures
//	                   (and kmod/fixtures/arch on 6.1 and 6.1-arm64: caught on one architecture only)
//	-artifacts-dir DIR KMODTEST_ARTIFACTS where each run's directory of logs, images and rerun commands goes:
//	                                      DIR/runs/<UTC time>-<pid>/, DIR/latest links to the newest (default: artifacts/)
//	                                      (not -artifacts: go test has its own flag of that name)
//	-update            KMODTEST_UPDATE=1  move cached kernels to the newest Debian publishes (else compared daily, only reported)
//	-boot              KMODTEST_BOOT=1    boot every guest instead of restoring a saved one
//	-debug-kernel      KMODTEST_DEBUG_KERNEL=1 build the sanitizer kernel 6.12-debug if not cached (once; docs/performance.md);
//	                                      without it an unbuilt one is skipped with a line saying so
//	                   KMODTEST_CACHE     cache directory (default: $XDG_CACHE_HOME/kmodtest)
//	                   KMODTEST_MATRIX    a matrix file to use instead of kernels/matrix.json
//	                   KMODTEST_SKIP_VM=1 skip the VM tests, saying so, after checking the options
//
// A timing report (fetch, build root, module build, initramfs, boot, probe
// per kernel) and a kernels x steps summary are printed at the end and
// written to report.txt in the run's artifacts directory, the timings
// also to timings.json (what kmodtest plan -costs reads), the results
// to results.json and results.ktap (docs/results.md). A failed step prints a rerun line that repeats every setting of the run
// (see the README); rerun.sh in the target's artifacts directory holds it.
package vmtests
