package kernels

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/kmodtest/kmodtest/internal/arch"
	"github.com/kmodtest/kmodtest/internal/userpath"
	"github.com/kmodtest/kmodtest/kbuild"
)

// embeddedMatrix is kernels/matrix.json, compiled in so that tests run
// without knowing where the repository lives.
//
//go:embed matrix.json
var embeddedMatrix []byte

// HostToolchain is the Toolchain value of a kernel whose compiler is
// installed on the host: its modules are built without a build root.
const HostToolchain = "host"

// A Kernel is one entry of the test matrix: where its packages come from,
// how to find the image and headers, and how to build modules for it.
type Kernel struct {
	// Name is the short name tests and the command line use ("6.1").
	Name string `json:"name"`
	// Arch is the Debian architecture of the kernel's packages (arch.AMD64
	// when the entry does not say): it picks apt's architecture, the
	// cross compiler, the guest's GOARCH and the QEMU system.
	Arch arch.Arch `json:"arch,omitempty"`
	// Suite is the Debian suite the kernel comes from (documentation and
	// messages; the sources lines in Apt are what apt uses).
	Suite string `json:"suite"`
	// Apt holds the sources.list lines for the kernel's packages.
	// {mirror} and {security} are replaced by the Debian and security
	// mirrors; lines without [options] get signed-by the archive keyring.
	Apt []string `json:"apt"`
	// ImageMeta and HeadersMeta are the meta packages whose dependency
	// names the current ABI (linux-image-REL, linux-headers-REL).
	ImageMeta   string `json:"image_meta"`
	HeadersMeta string `json:"headers_meta"`
	// Image is the package that holds vmlinuz ({release} is substituted).
	Image string `json:"image"`
	// Vmlinuz is the path of the kernel image inside Image.
	Vmlinuz string `json:"vmlinuz"`
	// Toolchain is HostToolchain or the name of a build root.
	Toolchain string `json:"toolchain"`
	// MakeVars are extra make variables for module builds ("CC=gcc").
	MakeVars []string `json:"make_vars,omitempty"`
	// Profiles lists the boot profiles the VM tests run ("default", "hardened").
	Profiles []string `json:"profiles"`
	// Source, when set, makes this a kernel the harness builds from a
	// Debian source package; ImageMeta, HeadersMeta, Image and Vmlinuz
	// are then unused.
	Source *SourceBuild `json:"source,omitempty"`
	// SMP and MemoryMB size the guest (0: harness.DefaultSMP vCPUs and
	// the VM package's default memory);
	// a KASAN kernel needs more memory than a stock one.
	SMP      int `json:"smp,omitempty"`
	MemoryMB int `json:"memory_mb,omitempty"`
	// CPU is the guest CPU model this entry boots with (QEMU's -cpu:
	// "EPYC-Milan", "Skylake-Client"); empty is the accelerator's
	// default (QEMU's plain model under TCG, the host's under KVM).
	// The -cpu option overrides it.
	CPU string `json:"cpu,omitempty"`
	// Root is the build root named by Toolchain. For a kernel that
	// prefers the host it is the build root named after its Suite, if
	// the matrix has one: used when the host's compiler is not the one
	// the kernel was built with.
	// LoadMatrix fills it in from the matrix's build_roots.
	Root *BuildRoot `json:"-"`
}

// A BuildRoot is a Debian system made with mmdebstrap that has a kernel's
// own compiler. One root serves every kernel whose Toolchain names it.
type BuildRoot struct {
	// Name is the key in the matrix's build_roots ("trixie").
	Name string `json:"-"`
	// Suite is the suite mmdebstrap installs; it defaults to Name.
	Suite string `json:"suite,omitempty"`
	// Apt holds the sources lines, like Kernel.Apt.
	Apt []string `json:"apt"`
	// Packages are unpacked into the root (compiler, make,
	// the libraries the kbuild tools link against, pahole).
	Packages []string `json:"packages"`
}

// matrixFile is the layout of matrix.json.
type matrixFile struct {
	Kernels    []Kernel              `json:"kernels"`
	BuildRoots map[string]*BuildRoot `json:"build_roots"`
}

// LoadMatrix returns the kernel matrix: the file named by $KMODTEST_MATRIX
// if set, else the matrix.json compiled into the package.
// A relative KMODTEST_MATRIX is taken from the directory the command was
// started in (see internal/userpath).
func LoadMatrix() ([]Kernel, error) {
	path, err := userpath.Resolve(os.Getenv("KMODTEST_MATRIX"))
	if err != nil {
		return nil, fmt.Errorf("load matrix (KMODTEST_MATRIX): %w", err)
	}
	if path == "" {
		m, err := ParseMatrix(embeddedMatrix)
		if err != nil {
			return nil, fmt.Errorf("load matrix kernels/matrix.json: %w", err)
		}
		return m, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load matrix (KMODTEST_MATRIX): %w", err)
	}
	m, err := ParseMatrix(data)
	if err != nil {
		return nil, fmt.Errorf("load matrix %s (KMODTEST_MATRIX): %w", path, err)
	}
	return m, nil
}

// MatrixSource names the matrix LoadMatrix reads, for messages: the
// KMODTEST_MATRIX file or the built-in kernels/matrix.json.
func MatrixSource() string {
	if p := os.Getenv("KMODTEST_MATRIX"); p != "" {
		if abs, err := userpath.Resolve(p); err == nil {
			p = abs
		}
		return "KMODTEST_MATRIX=" + p
	}
	return "the built-in kernels/matrix.json"
}

// ParseMatrix decodes and validates a matrix in the matrix.json format.
// Unknown fields are errors so that typos do not silently drop settings.
func ParseMatrix(data []byte) ([]Kernel, error) {
	var mf matrixFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := decodeMatrix(data, dec, &mf); err != nil {
		return nil, err
	}
	if len(mf.Kernels) == 0 {
		return nil, errors.New("matrix has no kernels")
	}
	for name, r := range mf.BuildRoots {
		if err := checkName("build root", name); err != nil {
			return nil, err
		}
		r.Name = name
		if r.Suite == "" {
			r.Suite = name
		}
		if len(r.Apt) == 0 {
			return nil, fmt.Errorf("build root %q: no apt lines", name)
		}
		if len(r.Packages) == 0 {
			return nil, fmt.Errorf("build root %q: no packages", name)
		}
	}
	seen := map[string]bool{}
	for i := range mf.Kernels {
		k := &mf.Kernels[i]
		if err := k.validate(); err != nil {
			return nil, err
		}
		if seen[k.Name] {
			return nil, fmt.Errorf("kernel %q: listed twice", k.Name)
		}
		seen[k.Name] = true
		if k.Toolchain != HostToolchain {
			r, ok := mf.BuildRoots[k.Toolchain]
			if !ok {
				return nil, fmt.Errorf("kernel %q: toolchain %q is neither %q nor a build_roots entry", k.Name, k.Toolchain, HostToolchain)
			}
			k.Root = r
		} else {
			k.Root = mf.BuildRoots[fallbackRoot(*k)]
		}
	}
	return mf.Kernels, nil
}

// fallbackRoot names the build root of a kernel that prefers the host
// but whose compiler the host lacks: the suite's ("bookworm"), or for a
// kernel of another architecture than the host's the suite's cross root
// ("bookworm-arm64").
func fallbackRoot(k Kernel) string {
	if kbuild.CrossCompile(k.Arch) != "" {
		return k.Suite + "-" + string(k.Arch)
	}
	return k.Suite
}

// decodeMatrix accepts a top-level "_comment" key (JSON has no comments)
// while still rejecting unknown fields everywhere else.
func decodeMatrix(data []byte, dec *json.Decoder, mf *matrixFile) error {
	var top map[string]json.RawMessage
	if err := dec.Decode(&top); err != nil {
		return jsonError(data, 0, dec, err)
	}
	delete(top, "_comment")
	for key := range top {
		if key != "kernels" && key != "build_roots" {
			return fmt.Errorf("decode: unknown top-level key %q", key)
		}
	}
	if raw, ok := top["kernels"]; ok {
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.DisallowUnknownFields()
		if err := d.Decode(&mf.Kernels); err != nil {
			return jsonError(data, int64(bytes.Index(data, raw)), d, fmt.Errorf("kernels: %w", err))
		}
	}
	if raw, ok := top["build_roots"]; ok {
		d := json.NewDecoder(strings.NewReader(string(raw)))
		d.DisallowUnknownFields()
		if err := d.Decode(&mf.BuildRoots); err != nil {
			return jsonError(data, int64(bytes.Index(data, raw)), d, fmt.Errorf("build_roots: %w", err))
		}
	}
	return nil
}

// jsonError gives a decoding error the line and column it happened at in
// data. base is the offset in data of the part dec decoded; errors that
// carry no offset (unknown fields) are placed where dec stopped.
func jsonError(data []byte, base int64, dec *json.Decoder, err error) error {
	off := dec.InputOffset()
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	case errors.Is(err, io.ErrUnexpectedEOF):
		off = int64(len(data))
	}
	// The offsets count the bytes read up to the error: the last one is
	// where it is.
	off = min(max(base, 0)+off, int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := max(off-int64(bytes.LastIndexByte(data[:off], '\n'))-1, 1)
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// nameRE is a plain token: kernel and build root names become parts of
// cache entry names and artifacts paths, so "..", "/" and a leading "-"
// (a flag) or "." (a hidden file, "..") are kept out.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)

// checkName checks a kernel or build root name.
func checkName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%s %q: a name must be a plain token: letters, digits, '.', '-' and '_', not starting with '.' or '-' (it becomes part of cache and artifacts paths)", what, name)
	}
	return nil
}

// validate checks the fields every Debian kernel entry needs.
func (k *Kernel) validate() error {
	if k.Name == "" {
		return errors.New("kernel entry without a name")
	}
	if err := checkName("kernel", k.Name); err != nil {
		return err
	}
	if k.Arch == "" {
		k.Arch = arch.AMD64
	}
	if !slices.Contains(arch.All, k.Arch) {
		return fmt.Errorf("kernel %q: arch %q is not supported (want one of %s)", k.Name, k.Arch, arch.Names())
	}
	missing := []string{}
	fields := map[string]string{
		"suite": k.Suite, "image_meta": k.ImageMeta, "headers_meta": k.HeadersMeta,
		"image": k.Image, "vmlinuz": k.Vmlinuz, "toolchain": k.Toolchain,
	}
	if k.Source != nil {
		fields = map[string]string{"suite": k.Suite, "source.package": k.Source.Package, "source.config": k.Source.Config}
		if k.Toolchain != HostToolchain {
			return fmt.Errorf("kernel %q: a source build uses the host's %s, so toolchain must be %q", k.Name, hostCC, HostToolchain)
		}
	}
	if k.SMP < 0 || k.MemoryMB < 0 {
		return fmt.Errorf("kernel %q: smp and memory_mb must not be negative", k.Name)
	}
	for field, v := range fields {
		if v == "" {
			missing = append(missing, field)
		}
	}
	if len(k.Apt) == 0 {
		missing = append(missing, "apt")
	}
	if len(k.Profiles) == 0 {
		missing = append(missing, "profiles")
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("kernel %q: missing %s", k.Name, strings.Join(missing, ", "))
	}
	return nil
}

// Select returns the kernels of matrix named in names, in the order given.
// Empty names selects the whole matrix.
func Select(matrix []Kernel, names []string) ([]Kernel, error) {
	if len(names) == 0 {
		return matrix, nil
	}
	var out []Kernel
	for _, name := range names {
		name = strings.TrimSpace(name)
		i := slices.IndexFunc(matrix, func(k Kernel) bool { return k.Name == name })
		if i < 0 {
			err := fmt.Errorf("unknown kernel %q: the matrix (%s) has %s", name, MatrixSource(), strings.Join(Names(matrix), ", "))
			if k, profile, ok := profileTarget(matrix, name); ok {
				err = fmt.Errorf("%w; %q is kernel %s with its %s profile, a target: -kernels %s runs every profile of %s", err, name, k, profile, k, k)
			}
			return nil, err
		}
		out = append(out, matrix[i])
	}
	return out, nil
}

// profileTarget reports whether name is a kernel's name and one of its
// profiles joined by "-" (the name of a target: "5.10-hardened").
func profileTarget(matrix []Kernel, name string) (kernel, profile string, ok bool) {
	for _, k := range matrix {
		if p, found := strings.CutPrefix(name, k.Name+"-"); found && slices.Contains(k.Profiles, p) {
			return k.Name, p, true
		}
	}
	return "", "", false
}

// Names returns the names of the kernels in matrix order.
func Names(matrix []Kernel) []string {
	names := make([]string, 0, len(matrix))
	for _, k := range matrix {
		names = append(names, k.Name)
	}
	return names
}
