// Package workflow holds the tests that check the repository's files that
// are not Go: the GitHub Actions workflows, with actionlint, and the
// documentation (README.md and docs/: the README's length, a link to every
// page, no link to a missing file or heading), so that a broken CI
// definition or a dangling link fails the tests like broken code does.
package workflow
