package contract

import "testing"

func TestTaint(t *testing.T) {
	if len(TaintFlags) != 20 || TaintFlags[19].Letter != 'J' {
		t.Fatalf("taint table has %d flags, want 20 ending with J (fwctl)", len(TaintFlags))
	}
	tests := []struct {
		before, after  uint64
		letters, words string
	}{
		{before: 0, after: AllowedTaint, letters: "none", words: "none"},
		{before: 1 << 12, after: 1<<12 | 1<<5 | 1<<9, letters: "BW", words: "B (bad page), W (warning)"},
		{before: 0, after: 1 << 7, letters: "D", words: "D (kernel died (oops))"},
		{before: 0, after: 1 << 19, letters: "J", words: "J (fwctl)"},
		{before: 0, after: 1 << 40, letters: "?", words: "bit 40"},
	}
	for _, tt := range tests {
		n := NewTaint(tt.before, tt.after)
		if got := TaintLetters(n); got != tt.letters {
			t.Errorf("TaintLetters(NewTaint(%#x, %#x)) = %s, want %s", tt.before, tt.after, got, tt.letters)
		}
		if got := DescribeTaint(n); got != tt.words {
			t.Errorf("DescribeTaint(NewTaint(%#x, %#x)) = %s, want %s", tt.before, tt.after, got, tt.words)
		}
	}
}
