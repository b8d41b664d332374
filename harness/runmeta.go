package harness

import "context"

// RepoCommit is `git describe --always --dirty` of repo, or "" outside a
// git work tree: results.json's kmodtest_commit, for the writers of
// results outside a session (kmodtest check).
func RepoCommit(ctx context.Context, repo string) string { return repoCommit(ctx, repo) }

// QEMUVersions is the first line of each QEMU binary's --version:
// results.json's qemu.
func QEMUVersions(ctx context.Context, bins []string) []string { return qemuVersions(ctx, bins) }
