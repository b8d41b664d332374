package modinfo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The modules a project depends on are found from their own .modinfo
// depends (what modpost wrote from the symbols each module uses), not
// from a modules.dep: depmod (kmod) is not on every host, and the
// depends field is the same graph modules.dep is made from.

// KernelIndex maps each module of a kernel's package (dir is its
// /lib/modules/RELEASE) to its file, by name with "-" read as "_".
func KernelIndex(dir string) (map[string]string, error) {
	index := map[string]string{}
	err := filepath.WalkDir(filepath.Join(dir, "kernel"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, ext := range []string{".ko", ".ko.xz", ".ko.zst", ".ko.gz"} {
			if base, ok := strings.CutSuffix(d.Name(), ext); ok {
				index[normal(base)] = p
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list the kernel's modules in %s: %w", dir, err)
	}
	return index, nil
}

// Uncompressed returns ko, or for a compressed module (.ko.xz, .ko.zst,
// .ko.gz) an uncompressed copy of it written into dir: the guest's
// insmod passes the file to finit_module, which takes compressed
// modules only on kernels built with CONFIG_MODULE_DECOMPRESS.
func Uncompressed(ko, dir string) (string, error) {
	var tool string
	switch filepath.Ext(ko) {
	case ".ko":
		return ko, nil
	case ".xz":
		tool = "xz"
	case ".zst":
		tool = "zstd"
	case ".gz":
		tool = "gzip"
	default:
		return "", fmt.Errorf("module %s: not a .ko, .ko.xz, .ko.zst or .ko.gz file", ko)
	}
	out := filepath.Join(dir, strings.TrimSuffix(filepath.Base(ko), filepath.Ext(ko)))
	cmd := exec.Command(tool, "-dc", ko)
	data, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("decompress %s with %s: %w (install %s)", ko, tool, err, tool)
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return "", fmt.Errorf("decompress %s: %w", ko, err)
	}
	return out, nil
}

// ResolveDepends returns the uncompressed files (written into dir where
// needed) of the kernel's modules that the modules named in want need,
// transitively, each after the modules it needs: the order insmod
// must load them in. index is KernelIndex's. A module missing from the
// index is an error naming it and who needs it.
func ResolveDepends(index map[string]string, want []string, dir string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1: being visited, 2: done
	var visit func(name, by string) error
	visit = func(name, by string) error {
		name = normal(name)
		switch state[name] {
		case 1, 2:
			return nil // a cycle cannot load either way; the kernel will say so
		}
		state[name] = 1
		src, ok := index[name]
		if !ok {
			return fmt.Errorf("%s depends on %s, which the kernel's package does not have", by, name)
		}
		ko, err := Uncompressed(src, dir)
		if err != nil {
			return err
		}
		info, err := Read(ko)
		if err != nil {
			return err
		}
		for _, d := range depends(info) {
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, ko)
		return nil
	}
	for _, w := range want {
		if err := visit(w, "the project"); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// depends lists the modules of info's depends field.
func depends(info Info) []string {
	var out []string
	for _, d := range strings.Split(info.First("depends"), ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, d)
		}
	}
	return out
}
