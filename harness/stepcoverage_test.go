package harness

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/kmodtest/kmodtest/coverage"
	"github.com/kmodtest/kmodtest/probe"
)

// TestStepSnapshots: every step of the run gets its end event's data, or
// says why it has none, in the order the steps ran.
func TestStepSnapshots(t *testing.T) {
	gcda := map[string][]byte{"/m.gcda": {1}}
	events := []probe.Event{
		{Kind: probe.KindBegin, Step: probe.StepInsmod},
		{Kind: probe.KindEnd, Step: probe.StepInsmod, Status: probe.StatusPass, Files: gcda},
		{Kind: probe.KindBegin, Step: probe.StepReply},
		{Kind: probe.KindEnd, Step: probe.StepReply, Status: probe.StatusFail},
		{Kind: probe.KindBegin, Step: probe.StepAck},
	}
	got := StepSnapshots([]string{probe.StepInsmod, probe.StepReply, probe.StepAck, probe.StepRmmod}, events)
	want := []coverage.Snapshot{
		{Step: probe.StepInsmod, Gcda: gcda},
		{Step: probe.StepReply, Missing: "the step (fail) sent no gcov data: the module was not loaded yet, or reading it failed"},
		{Step: probe.StepAck, Missing: "the step did not end: the prober or the guest stopped"},
		{Step: probe.StepRmmod, Missing: "the step did not end: the prober or the guest stopped"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("unexpected snapshots (-want +got):\n%s", diff)
	}
}
