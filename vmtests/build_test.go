package vmtests

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmodtest/kmodtest/kbuild"
)

// TestBuildErrorShowsCompilerLines breaks the module on purpose and checks
// that the failure quotes the compiler, file and line included, instead of
// a bare "exit status 2".
func TestBuildErrorShowsCompilerLines(t *testing.T) {
	tg := fixtureTarget(t, "default")
	patch := filepath.Join(t.TempDir(), "syntax-error.patch")
	broken := `--- a/NetlinkGreetingsLKM.c
+++ b/NetlinkGreetingsLKM.c
@@ -111,6 +111,7 @@
 	textlen = strnlen(text, min(nlmsg_len(nlh), GREET_TEXT_MAX + 1));
 	if (textlen < 1 || textlen > GREET_TEXT_MAX)
 		return -EINVAL;
+	textlen = undeclared_greeting_limit;
 
 	pr_info_ratelimited("greeting from port %u: %*pE\n",
 			    NETLINK_CB(skb).portid,
`
	if err := os.WriteFile(patch, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := env.Cache.Fetch(t.Context(), tg.Kernel)
	if err != nil {
		t.Fatal(err)
	}
	_, err = env.Cache.BuildModule(t.Context(), f, filepath.Join(env.Repo, "kmod"), patch)
	var be *kbuild.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("building a module with a syntax error: got %v, want a *kbuild.BuildError", err)
	}
	msg := err.Error()
	for _, want := range []string{"NetlinkGreetingsLKM.c:114", "error:", "undeclared_greeting_limit"} {
		if !strings.Contains(msg, want) {
			t.Errorf("build error does not quote %q:\n%s", want, msg)
		}
	}
	t.Logf("the build error reads:\n%s", msg)
}
