//go:build tools

// Package tools pins the commands that are built by import path only (the
// u-root init in the guest image), so that go.mod keeps them.
package tools

import (
	_ "github.com/u-root/u-root/cmds/core/init"
)
