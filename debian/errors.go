package debian

import (
	"fmt"
	"strings"

	"github.com/kmodtest/kmodtest/internal/proc"
)

// A NetworkError reports that apt could not reach the archive.
type NetworkError struct {
	Cmd   string
	Lines []string // apt's error lines
}

func (e *NetworkError) Error() string {
	return fmt.Sprintf("%s: cannot download from the Debian archive:\n  %s\nis the Debian mirror reachable? set KMODTEST_MIRROR (and KMODTEST_SECURITY_MIRROR) to one that is",
		e.Cmd, strings.Join(e.Lines, "\n  "))
}

// CommandFailed builds the error for a failed command that may have
// downloaded from the archive (apt, mmdebstrap, dpkg-deb): apt's network
// failures become a *NetworkError, anything else a *proc.CommandError
// with the tail of the output.
func CommandFailed(cmd string, err error, output string) error {
	if bad := failedFetchLines(output); len(bad) > 0 {
		return &NetworkError{Cmd: cmd, Lines: bad}
	}
	return &proc.CommandError{Cmd: cmd, Err: err, Output: proc.TailLines(output, 25)}
}

// failedFetchLines returns apt's "Failed to fetch" and "index files failed"
// lines: signs that the mirror could not be reached.
func failedFetchLines(stderr string) []string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "Failed to fetch") || strings.Contains(line, "index files failed to download") ||
			strings.Contains(line, "Could not resolve") || strings.Contains(line, "Temporary failure resolving") ||
			strings.Contains(line, "Unable to connect") || strings.Contains(line, "Could not connect") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
