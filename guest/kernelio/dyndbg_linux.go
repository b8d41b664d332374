package kernelio

import (
	"fmt"
	"os"
	"strings"

	"github.com/kmodtest/kmodtest/greet"
)

// EnabledDebugSites counts the module's call sites that control shows
// enabled ("=p").
func EnabledDebugSites(control string) (int, error) {
	data, err := os.ReadFile(control)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", control, err)
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "["+greet.ModuleName+"]") && strings.Contains(l, " =p") {
			n++
		}
	}
	return n, nil
}
