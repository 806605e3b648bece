//go:build !linux

package stacktest

import "os/exec"

// dieWithParent is Linux-only (Pdeathsig); elsewhere t.Cleanup alone stops Telegraf.
func dieWithParent(*exec.Cmd) {}
