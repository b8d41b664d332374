package testcmd

import (
	"encoding/json"
	"testing"
)

func roundTripJSON(t *testing.T, r Result) Result {
	t.Helper()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	return back
}
