//go:build !linux

package main

import "syscall"

// devChildAttr puts a dev cluster node in its own process group, so that a
// terminal's Ctrl-C reaches only weir dev cluster, which then stops each node
// exactly once. Without Linux's Pdeathsig, nodes outlive a killed parent.
func devChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
