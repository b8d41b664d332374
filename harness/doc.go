// Package harness runs the VM tests of the module: it is what
// `go test ./vmtests` and the kmodtest command share.
//
// Options hold a run's settings and register them on any flag.FlagSet,
// with environment variables as defaults. NewSession validates them,
// picks the targets (kernels x boot profiles), the accelerator and the
// run's own artifacts directory. Session.Prepare fetches a kernel and
// builds the module for it in the background; Session.BootTarget
// builds, boots and judges one target and records its row for the
// timing and summary report that Session.Finish prints. A Boot is one
// QEMU boot of one kernel with one module, judged step by step; FailureText
// formats a failed step with its kernel lines, artifacts and rerun line.
//
// CheckProject builds any module project (package project: a dkms.conf,
// a kmodtest.json or a plain Kbuild directory) for each kernel with that
// kernel's own compiler and checks each module's .modinfo on the host,
// into a kernels x modules x steps table (`kmodtest check`,
// docs/projects.md). It needs no Session: nothing is booted yet.
//
// It holds no test logic of its own: vmtests/ asserts on the verdicts
// (see vmtests/doc.go for the flags and variables).
package harness
