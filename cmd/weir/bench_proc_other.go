//go:build !linux

package main

import "syscall"

// childProcAttr puts an embedded broker in its own process group, so that
// a terminal's Ctrl-C reaches only weir bench, which outlives its clients
// and then stops the broker.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
