package kernelio

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadSUnreclaim returns SUnreclaim from /proc/meminfo in kB.
func ReadSUnreclaim() (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	return parseMeminfo(b, "SUnreclaim")
}

// parseMeminfo returns the value of key in kB.
func parseMeminfo(b []byte, key string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			break
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("meminfo %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("meminfo: no %s line", key)
}
