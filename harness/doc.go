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
// It holds no test logic of its own: vmtests/ asserts on the verdicts
// (see vmtests/doc.go for the flags and variables).
package harness
