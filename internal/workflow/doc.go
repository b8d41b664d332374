// Package workflow holds the test that checks the repository's GitHub
// Actions workflows with actionlint, so that a broken CI definition fails
// the tests like broken code does.
package workflow
